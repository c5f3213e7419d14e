"""How sure the model was while writing a sample: DeepConf's token and trace confidences.

DeepConf (Fu et al. 2025, "Deep Think with Confidence") scores each generated token by the
negative mean log-probability of the engine's top-k candidates at that position: a peaked
distribution (one likely token, the rest far below) scores high, a flat one low. A trace is
then summarised by

- ``mean``: the mean token confidence;
- ``lowest_group``: the lowest mean over a sliding window of ``window`` tokens (a trace is as
  weak as its weakest stretch of reasoning; the whole trace when it is shorter than a window);
- ``tail``: the mean over the last ``tail`` tokens (where the answer is written).

Without top-k alternatives (the engine returned only the sampled token's logprob) a token's
confidence falls back to the negative logprob of the sampled token, which keeps the same
direction (higher is surer) but a different scale. ``WindowConfidence`` follows the sliding
window while a sample is generated, for pruning weak traces in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from decoding.samples import TokenLogprob

DEFAULT_WINDOW = 32
DEFAULT_TAIL = 32


@dataclass(frozen=True)
class ConfidenceSpec:
    """What confidence a precise request measures: ``top_k`` alternatives per token asked of the
    engine (0: the sampled token's logprob only), the group ``window`` and ``tail`` in tokens,
    and whether each sample reports its per-token confidences (for offline tuning)."""

    top_k: int = 0
    window: int = DEFAULT_WINDOW
    tail: int = DEFAULT_TAIL
    keep_tokens: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.window < 1 or self.tail < 1:
            raise ValueError(f"window and tail must be >= 1, got {self.window} and {self.tail}")


def token_confidence(token: TokenLogprob) -> float:
    """-mean(top-k logprobs) at one position; -logprob of the sampled token without top-k."""
    if token.top:
        return -sum(logprob for _, logprob in token.top) / len(token.top)
    return -token.logprob


@dataclass(frozen=True)
class Confidence:
    """A trace's confidence summaries (higher is surer); see the module docstring."""

    mean: float
    lowest_group: float
    tail: float


def trace_confidence(
    tokens: Sequence[TokenLogprob], window: int = DEFAULT_WINDOW, tail: int = DEFAULT_TAIL
) -> Confidence | None:
    """The summaries of one finished sample's tokens, or None when it has none."""
    if window < 1 or tail < 1:
        raise ValueError(f"window and tail must be >= 1, got {window} and {tail}")
    scores = [token_confidence(t) for t in tokens]
    if not scores:
        return None
    follow, lowest = WindowConfidence(window), None
    for score in scores:
        group = follow.push(score)
        if follow.full:
            lowest = group if lowest is None else min(lowest, group)
    mean = sum(scores) / len(scores)
    last = scores[-tail:]
    return Confidence(
        mean=mean,
        lowest_group=mean if lowest is None else lowest,  # shorter than a window: the whole
        tail=sum(last) / len(last),
    )


class WindowConfidence:
    """The mean confidence of the last ``window`` tokens, updated one token at a time."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._scores: deque[float] = deque()
        self._total = 0.0

    def push(self, score: float) -> float:
        """Add one token's confidence; the mean of the window so far (of fewer tokens at first)."""
        self._scores.append(score)
        self._total += score
        if len(self._scores) > self.window:
            self._total -= self._scores.popleft()
        return self._total / len(self._scores)

    @property
    def full(self) -> bool:
        """Whether a whole window has been seen (a group mean, not a start-up mean)."""
        return len(self._scores) >= self.window
