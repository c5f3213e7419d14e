"""The decisions of an adaptive vote, sample by sample: prune, count, stop.

``Referee`` is pure and synchronous: the live loop (``decoding.self_consistency``) feeds it what
the engine streams and what the judge decides, and offline replays feed it recorded samples, so
both take the same decisions. It knows which samples are still running, which were pruned by the
``ConfidenceGate``, and the votes so far in finishing order; after each batch of finishes,
``verdict`` says whether to stop: ``"consensus"`` when the stopping rule is satisfied,
``"decided"`` when the running samples can no longer change the outcome of a counted vote
(``decide``; a confidence-weighted or filtered vote can turn later, so only its rule stops it).

With a gate, votes are weighted for the stopping rule by each sample's lowest-group confidence
(DeepConf's weighting); without one each vote weighs 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from decoding.pruning import ConfidenceGate
from decoding.stopping import Standing, StoppingRule, decided

Verdict = Literal["consensus", "decided"]


@dataclass(frozen=True)
class _Vote:
    index: int
    key: str | None
    weight: float


class Referee:
    """Tracks running, pruned and voting samples, and decides when the vote is settled."""

    def __init__(
        self,
        samples: Iterable[int],
        *,
        stopping: StoppingRule | None = None,
        gate: ConfidenceGate | None = None,
        min_agreement: float = 0.0,
        decide: bool = True,
    ) -> None:
        self.running: set[int] = set(samples)
        self.pruned: set[int] = set()
        self.gate = gate
        self._stopping = stopping
        self._min_agreement = min_agreement
        self._decide = decide
        self._votes: list[_Vote] = []

    def tokens(self, index: int, scores: Iterable[float]) -> bool:
        """A running sample's new token confidences; True when it must be pruned now."""
        if self.gate is None or index not in self.running:
            return False
        if self.gate.follow(index, scores):
            self._prune(index)
            return True
        return False

    def finish(self, index: int) -> list[int]:
        """A sample ended; the samples pruned by it (itself when below the threshold, or those
        below a threshold its finish calibrated: running ones are to be aborted)."""
        self.running.discard(index)
        if self.gate is None:
            return []
        below = self.gate.finish(index, sorted(self.running))
        for pruned in below:
            self._prune(pruned)
        return below

    def vote(self, index: int, key: str | None) -> None:
        """A finished, judged sample votes (unless it was pruned meanwhile)."""
        if index in self.pruned:
            return
        weight = 1.0
        if self.gate is not None:
            weight = self.gate.lowest_group(index) or 0.0
        self._votes.append(_Vote(index, key, weight))

    @property
    def voters(self) -> list[int]:
        """The samples that vote, in finishing order."""
        return [v.index for v in self._votes]

    def standing(self) -> Standing:
        """What the stopping rule sees now."""
        weights = None if self.gate is None else [v.weight for v in self._votes]
        return Standing([v.key for v in self._votes], weights, len(self.running))

    def verdict(self) -> Verdict | None:
        """Whether to stop now: the rule is satisfied, or nothing running can change the vote."""
        if not self.running:
            return None  # nothing left to stop
        standing = self.standing()
        if self._stopping is not None and self._stopping.should_stop(standing):
            return "consensus"
        if self._decide and decided(standing, self._min_agreement):
            return "decided"
        return None

    def _prune(self, index: int) -> None:
        self.running.discard(index)
        self.pruned.add(index)
        self._votes = [v for v in self._votes if v.index != index]
