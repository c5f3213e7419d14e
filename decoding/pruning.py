"""Pruning weak traces in flight (DeepConf online, Fu et al. 2025, "Deep Think with Confidence").

Each running sample is followed token by token: its confidence over a sliding window of
``window`` tokens (``decoding.confidence``), and the lowest such group mean seen so far. The first
``warmup`` samples to finish calibrate a threshold: the ``percentile``-th percentile of their
lowest-group confidences (DeepConf's reference code: ``np.percentile(min_confs, 100 - p)`` with
p = 90 keeping about 90% of traces, "DeepConf-high", which is ``percentile=10`` here; p = 10,
"DeepConf-low", is ``percentile=90``). From then on a sample whose lowest full window falls below
the threshold is pruned: aborted if it is still running, and left out of the vote. Warm-up samples
below the threshold are left out too, as in the reference.

Defaults: warm-up 4, percentile 90 (DeepConf-low). Chosen by replaying the live referee on
recorded votes of 8 (warm-ups 2-4 crossed with percentiles 10-90): the fewest tokens among the
settings that keep the fixed vote's accuracy (bench/README.md, "Adaptive precise mode").

A sample shorter than one window has no full window while it runs (it cannot be pruned in flight);
when it finishes, its lowest-group confidence is the mean over all its tokens, as in
``trace_confidence``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from decoding.confidence import WindowConfidence

DEFAULT_WARMUP = 4
DEFAULT_PERCENTILE = 90.0  # DeepConf-low; chosen by replay (bench/README.md)


@dataclass(frozen=True)
class PruneSpec:
    """How pruning calibrates: ``warmup`` finished samples, and the ``percentile`` of their
    lowest-group confidences that becomes the threshold (higher prunes more)."""

    warmup: int = DEFAULT_WARMUP
    percentile: float = DEFAULT_PERCENTILE

    def __post_init__(self) -> None:
        if self.warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {self.warmup}")
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile}")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ranked = sorted(values)
    position = (len(ranked) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ranked[low] + (ranked[high] - ranked[low]) * (position - low)


class _Trace:
    """One sample's confidence so far: its sliding window, the lowest full window, the mean."""

    def __init__(self, window: int) -> None:
        self.follow = WindowConfidence(window)
        self.lowest: float | None = None
        self.total = 0.0
        self.count = 0

    def push(self, score: float) -> None:
        group = self.follow.push(score)
        self.total += score
        self.count += 1
        if self.follow.full:
            self.lowest = group if self.lowest is None else min(self.lowest, group)

    @property
    def lowest_group(self) -> float | None:
        """The lowest full window, or the mean of a trace shorter than one (None: no tokens)."""
        if self.lowest is not None:
            return self.lowest
        return self.total / self.count if self.count else None


class ConfidenceGate:
    """Follows every sample's window confidence, calibrates the threshold on the first finished
    samples, and says which samples fall below it."""

    def __init__(self, spec: PruneSpec, window: int) -> None:
        self.spec = spec
        self._window = window
        self._traces: dict[int, _Trace] = {}
        self.warmup: list[int] = []  # the samples that calibrated the threshold, in finish order
        self.threshold: float | None = None

    def _trace(self, index: int) -> _Trace:
        if index not in self._traces:
            self._traces[index] = _Trace(self._window)
        return self._traces[index]

    def follow(self, index: int, scores: Iterable[float]) -> bool:
        """Add a running sample's new token confidences; True when it is now below the threshold
        (only a full window counts while a sample runs)."""
        trace = self._trace(index)
        for score in scores:
            trace.push(score)
        return self._below(trace.lowest)

    def lowest_group(self, index: int) -> float | None:
        """The sample's lowest-group confidence so far (see ``_Trace.lowest_group``)."""
        trace = self._traces.get(index)
        return None if trace is None else trace.lowest_group

    def finish(self, index: int, running: Iterable[int]) -> list[int]:
        """A sample ended. Returns the samples below the threshold now: this one, or, when it
        completes the warm-up, every warm-up sample and ``running`` sample below the new bar."""
        if self.threshold is not None:
            return [index] if self._below(self.lowest_group(index)) else []
        self.warmup.append(index)
        if len(self.warmup) < self.spec.warmup:
            return []
        known = [v for v in map(self.lowest_group, self.warmup) if v is not None]
        if not known:
            return []  # no confidence to calibrate on (the engine sent no logprobs)
        self.threshold = percentile(known, self.spec.percentile)
        below = [i for i in self.warmup if self._below(self.lowest_group(i))]
        return below + [i for i in running if self._below(self._trace(i).lowest)]

    def _below(self, value: float | None) -> bool:
        return self.threshold is not None and value is not None and value < self.threshold
