"""Stopping rules for adaptive self-consistency: when have we sampled enough to trust the leader?

A rule sees the vote counts so far (canonical key -> count, unparsed samples excluded) and the
keys of all samples so far in sample order (None: no answer), and also chooses the size of the
next round, since each round is one engine request of ``n`` samples.

- ``BetaStopping`` (Aggarwal et al. 2023, "Let's Sample Step by Step", Adaptive-Consistency): with
  leader count ``a`` and runner-up count ``b``, stop when P(p_leader > p_runner_up) >= threshold,
  i.e. P(X > 1/2) for X ~ Beta(a + 1, b + 1). Default threshold 0.95; rounds of 2, 2, 4, 8, ...
  (unanimity stops after 4 samples: 31/32 >= 0.95).
- ``WindowStopping`` (Li et al. 2024, "Escape Sky-high Cost", ESC): stop when the last ``window``
  samples all gave the same answer. Rounds are exactly one window, as in the paper (default 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol, runtime_checkable


@runtime_checkable
class StoppingRule(Protocol):
    """Decides after each round whether to stop, and how many samples the next round asks for."""

    def should_stop(self, counts: Mapping[str, int], window: Sequence[str | None]) -> bool: ...

    def next_round(self, samples_so_far: int, remaining: int) -> int: ...


def beta_confidence_exact(a: int, b: int) -> Fraction:
    """P(X > 1/2) for X ~ Beta(a + 1, b + 1), exactly.

    For integer shapes the regularised incomplete beta is a binomial tail:
    I_x(a + 1, b + 1) = P(Binomial(a + b + 1, x) >= a + 1), so with x = 1/2
    P(X > 1/2) = P(Binomial(a + b + 1, 1/2) <= a) = sum_{j=0}^{a} C(a + b + 1, j) / 2^(a + b + 1).
    """
    if a < 0 or b < 0:
        raise ValueError(f"counts must be non-negative, got a={a}, b={b}")
    n = a + b + 1
    total, term = 0, 1  # term = C(n, j), updated in place: O(n) big-int steps, not O(n^2)
    for j in range(a + 1):
        total += term
        term = term * (n - j) // (j + 1)
    return Fraction(total, 2**n)


def beta_confidence(a: int, b: int) -> float:
    """P(p_leader > p_runner_up) under the Beta(a + 1, b + 1) posterior, as a float."""
    return float(beta_confidence_exact(a, b))


def leader_and_runner_up(counts: Mapping[str, int]) -> tuple[int, int]:
    """The two largest vote counts (0 where there is no such answer)."""
    top = sorted(counts.values(), reverse=True)[:2]
    return (top[0] if top else 0, top[1] if len(top) > 1 else 0)


def doubling_rounds(samples_so_far: int, remaining: int, first: int = 2) -> int:
    """Round sizes first, first, 2*first, 4*first, ...: each round doubles the samples so far."""
    return max(1, min(remaining, max(first, samples_so_far)))


@dataclass(frozen=True)
class BetaStopping:
    """Adaptive-Consistency's rule: stop once P(leader beats runner-up) >= ``threshold``."""

    threshold: float = 0.95
    first_round: int = 2

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0.5, 1], got {self.threshold}")
        if self.first_round < 1:
            raise ValueError(f"first_round must be >= 1, got {self.first_round}")

    def should_stop(self, counts: Mapping[str, int], window: Sequence[str | None]) -> bool:
        """Stop when P(X > 1/2), X ~ Beta(leader + 1, runner_up + 1), reaches the threshold."""
        a, b = leader_and_runner_up(counts)
        return a > 0 and beta_confidence(a, b) >= self.threshold

    def next_round(self, samples_so_far: int, remaining: int) -> int:
        """Double the samples so far, starting with ``first_round``."""
        return doubling_rounds(samples_so_far, remaining, self.first_round)


@dataclass(frozen=True)
class WindowStopping:
    """ESC's rule: stop when the last ``window`` samples agree (all parsed, all the same answer)."""

    window: int = 5

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")

    def should_stop(self, counts: Mapping[str, int], window: Sequence[str | None]) -> bool:
        """Stop when the last ``self.window`` answers are one and the same (zero entropy)."""
        if len(window) < self.window:
            return False
        last = window[-self.window :]
        return last[0] is not None and all(key == last[0] for key in last)

    def next_round(self, samples_so_far: int, remaining: int) -> int:
        """One window per round, so each check looks at a fresh, non-overlapping window."""
        return max(1, min(remaining, self.window))
