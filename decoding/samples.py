"""What engines produce: per-token logprobs, per-sample deltas, and finished samples.

A generation streams ``GenerationChunk``s, each holding the ``SampleDelta`` of every sample that
advanced; ``fold`` sums them into finished ``Sample``s (a sample is the sum of its deltas, so it
has a delta's fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its logprob and, if asked for, its most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class SampleDelta:
    """What one sample (by ``index``) added since the previous chunk."""

    index: int
    text: str = ""
    token_count: int = 0
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None


@dataclass
class GenerationChunk:
    """One step of a generation: the samples that advanced, and the prompt's token count."""

    prompt_tokens: int
    deltas: list[SampleDelta] = field(default_factory=list)


@dataclass
class Sample(SampleDelta):
    """A finished sample: the sum of its deltas."""

    @property
    def mean_logprob(self) -> float | None:
        """Mean logprob of the sampled tokens, or None when the engine gave none."""
        if not self.logprobs:
            return None
        return sum(t.logprob for t in self.logprobs) / len(self.logprobs)

    def add(self, delta: SampleDelta) -> None:
        """Append one delta of this sample."""
        self.text += delta.text
        self.token_count += delta.token_count
        if delta.logprobs is not None:
            self.logprobs = (self.logprobs or []) + delta.logprobs
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason


@dataclass
class Generation:
    """All samples of one engine request, in index order, with the prompt's token count."""

    prompt_tokens: int
    samples: list[Sample]

    @property
    def completion_tokens(self) -> int:
        """Tokens generated across all samples."""
        return sum(s.token_count for s in self.samples)


def fold(chunks: Sequence[GenerationChunk], n: int) -> Generation:
    """Fold a sequence of chunks into finished samples (used by ``collect`` and tests)."""
    samples = [Sample(index=i) for i in range(n)]
    prompt_tokens = 0
    for chunk in chunks:
        prompt_tokens = chunk.prompt_tokens
        for delta in chunk.deltas:
            samples[delta.index].add(delta)
    return Generation(prompt_tokens=prompt_tokens, samples=samples)
