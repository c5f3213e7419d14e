"""How much each sample's vote counts, and which samples vote at all: confidence-aware voting.

Self-consistency counts every sample once. Confidence-aware variants from the literature weigh
or filter samples by how sure the model was while writing them:

- ``majority``: every sample weighs 1 (Wang et al. 2022).
- ``logprob``: exp(mean token logprob), the sample's geometric-mean token probability.
- ``cisc``: CISC (Taubenfeld et al. 2025): a softmax over the request's samples of their
  confidence divided by a temperature; the confidence is DeepConf's ``mean`` when the samples
  carry it (top-k logprobs were asked for), else the mean token logprob.
- ``lowest_group`` / ``tail`` / ``mean``: DeepConf's trace confidences used as weights (Fu et al.
  2025; ``decoding.confidence``); a sample without them weighs 0 (it still shows in the votes).

``keep_top`` (DeepConf's offline filter) keeps only the given share of the most confident
samples (by lowest-group confidence, else mean logprob; at least one) before the vote; the
others are reported with ``voted: false``.

The evaluation harness (``evaluation.rules``) calls these same functions, so what it measures
is what the server does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from decoding.confidence import Confidence
from decoding.voting import Ballot

Weighting = Literal["majority", "logprob", "cisc", "lowest_group", "tail", "mean"]
WEIGHTINGS: tuple[Weighting, ...] = ("majority", "logprob", "cisc", "lowest_group", "tail", "mean")
DEFAULT_CISC_TEMPERATURE = 0.5


@dataclass(frozen=True)
class Signals:
    """What one sample offers to weigh it by."""

    mean_logprob: float | None
    confidence: Confidence | None


def weights(
    samples: Sequence[Signals],
    weighting: Weighting = "majority",
    cisc_temperature: float = DEFAULT_CISC_TEMPERATURE,
) -> list[float]:
    """One weight per sample, in order (all non-negative; all 1 for ``majority``)."""
    if weighting == "majority":
        return [1.0] * len(samples)
    if weighting == "logprob":
        return [0.0 if s.mean_logprob is None else math.exp(s.mean_logprob) for s in samples]
    if weighting == "cisc":
        return _softmax([_cisc_score(s) for s in samples], cisc_temperature)
    return [max(0.0, _trace(s, weighting) or 0.0) for s in samples]


def most_confident(samples: Sequence[Signals], share: float) -> set[int]:
    """Positions of the ``share`` most confident samples (at least one; ties: the earlier)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"keep_top must be in (0, 1], got {share}")
    keep = max(1, math.ceil(share * len(samples))) if samples else 0
    ranked = sorted(range(len(samples)), key=lambda i: (-_rank(samples[i]), i))
    return set(ranked[:keep])


def weigh(
    ballots: Sequence[Ballot],
    confidences: Mapping[int, Confidence | None],
    weighting: Weighting = "majority",
    keep_top: float = 1.0,
    cisc_temperature: float = DEFAULT_CISC_TEMPERATURE,
) -> list[Ballot]:
    """The ballots that vote, each with its weight: the ``keep_top`` most confident, weighed
    by ``weighting`` (``confidences`` by ballot index; the weights use every sample's signal)."""
    signals = [Signals(b.mean_logprob, confidences.get(b.index)) for b in ballots]
    kept = most_confident(signals, keep_top) if keep_top < 1.0 else set(range(len(ballots)))
    found = weights(signals, weighting, cisc_temperature)
    return [
        replace(ballot, weight=weight)
        for position, (ballot, weight) in enumerate(zip(ballots, found, strict=True))
        if position in kept
    ]


def _trace(sample: Signals, name: str) -> float | None:
    if sample.confidence is None:
        return None
    value: float = getattr(sample.confidence, name)
    return value


def _rank(sample: Signals) -> float:
    value = _trace(sample, "lowest_group")
    if value is None:
        value = sample.mean_logprob
    return float("-inf") if value is None else value


def _cisc_score(sample: Signals) -> float | None:
    value = _trace(sample, "mean")
    return sample.mean_logprob if value is None else value


def _softmax(scores: Sequence[float | None], temperature: float) -> list[float]:
    """Softmax of score / temperature; a sample without a score weighs 0."""
    if temperature <= 0:
        raise ValueError(f"cisc_temperature must be > 0, got {temperature}")
    known = [s / temperature for s in scores if s is not None]
    if not known:
        return [0.0] * len(scores)
    top = max(known)
    raw = [0.0 if s is None else math.exp(s / temperature - top) for s in scores]
    total = sum(raw)
    return [r / total for r in raw]
