"""Stopping rules for adaptive self-consistency: when do the finished samples settle the vote?

All samples of an adaptive request run at once; each time samples finish (and are judged), a rule
sees the ``Standing``: the answer keys of the finished, voting samples in the order they finished
(None: no answer), their weights (each 1 unless the samples are weighted by their confidence),
and how many samples are still running. When it says stop, the running samples are aborted.

- ``BetaStopping`` (Aggarwal et al. 2023, "Let's Sample Step by Step", Adaptive-Consistency): with
  leader mass ``a`` and runner-up mass ``b``, stop when P(p_leader > p_runner_up) >= threshold,
  i.e. P(X > 1/2) for X ~ Beta(a + 1, b + 1). Default threshold 0.95 (unanimity stops after 4
  samples: 31/32). With weights, masses are rescaled so that the mean voter weighs 1 (unit
  weights give the counts), and the non-integer shapes use mpmath's regularised incomplete beta.
- ``WindowStopping`` (Li et al. 2024, "Escape Sky-high Cost", ESC): stop when the last ``window``
  finished samples all gave the same answer (default 3; ESC used 5). Precise mode's default rule:
  chosen by replay on recorded votes, the fewest tokens of the rules that keep the fixed vote's
  accuracy (bench/README.md, "Adaptive precise mode").
- ``ConsensusStopping`` (Fu et al. 2025, DeepConf online): stop when the leader holds at least
  ``share`` of the voting weight, once ``min_votes`` samples voted.

``decided`` is no rule but a fact: when the samples still running cannot change the majority
(nor the abstention under ``min_agreement``), waiting for them cannot change the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol, runtime_checkable

import mpmath  # sympy's own dependency (math-verify needs sympy): no new package


@dataclass(frozen=True)
class Standing:
    """What a stopping rule sees: finished voters' keys in finishing order, weights, running."""

    keys: Sequence[str | None]
    weights: Sequence[float] | None = None  # None: every voter weighs 1
    running: int = 0

    def __post_init__(self) -> None:
        if self.weights is not None and len(self.weights) != len(self.keys):
            raise ValueError("one weight per key")
        if self.weights is not None and any(w < 0 for w in self.weights):
            raise ValueError("weights must be non-negative")

    def counts(self) -> dict[str, int]:
        """Votes per answer key (unparsed samples excluded)."""
        found: dict[str, int] = {}
        for key in self.keys:
            if key is not None:
                found[key] = found.get(key, 0) + 1
        return found

    def masses(self) -> dict[str, float]:
        """Weight per answer key, rescaled so the mean voter weighs 1 (= counts without weights)."""
        if self.weights is None:
            return {key: float(count) for key, count in self.counts().items()}
        total = sum(self.weights)
        scale = len(self.weights) / total if total > 0 else 0.0
        found: dict[str, float] = {}
        for key, weight in zip(self.keys, self.weights, strict=True):
            if key is not None:
                found[key] = found.get(key, 0.0) + weight * scale
        return found


@runtime_checkable
class StoppingRule(Protocol):
    """Decides, after each finish, whether the finished samples settle the vote."""

    def should_stop(self, standing: Standing) -> bool: ...


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


def beta_confidence(a: float, b: float) -> float:
    """P(p_leader > p_runner_up) under the Beta(a + 1, b + 1) posterior, as a float; exact for
    integer masses, mpmath's incomplete beta for weighted ones."""
    if a < 0 or b < 0:
        raise ValueError(f"masses must be non-negative, got a={a}, b={b}")
    if float(a).is_integer() and float(b).is_integer():
        return float(beta_confidence_exact(int(a), int(b)))
    below = mpmath.betainc(a + 1, b + 1, 0, 0.5, regularized=True)
    return 1.0 - float(below)


def leader_and_runner_up(masses: Mapping[str, float]) -> tuple[float, float]:
    """The two largest masses (0 where there is no such answer)."""
    top = sorted(masses.values(), reverse=True)[:2]
    return (top[0] if top else 0, top[1] if len(top) > 1 else 0)


@dataclass(frozen=True)
class BetaStopping:
    """Adaptive-Consistency's rule: stop once P(leader beats runner-up) >= ``threshold``."""

    threshold: float = 0.95

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0.5, 1], got {self.threshold}")

    def should_stop(self, standing: Standing) -> bool:
        """Stop when P(X > 1/2), X ~ Beta(leader + 1, runner_up + 1), reaches the threshold."""
        a, b = leader_and_runner_up(standing.masses())
        return a > 0 and beta_confidence(a, b) >= self.threshold


@dataclass(frozen=True)
class WindowStopping:
    """ESC's rule: stop when the last ``window`` finished samples agree (all parsed, all equal)."""

    window: int = 3

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")

    def should_stop(self, standing: Standing) -> bool:
        """Stop when the last ``self.window`` answers are one and the same (zero entropy)."""
        keys = standing.keys
        if len(keys) < self.window:
            return False
        last = keys[-self.window :]
        return last[0] is not None and all(key == last[0] for key in last)


@dataclass(frozen=True)
class ConsensusStopping:
    """DeepConf's online rule: stop when the leader's share of the (confidence) weight reaches
    ``share``, once at least ``min_votes`` samples voted."""

    share: float = 0.95
    min_votes: int = 4

    def __post_init__(self) -> None:
        if not 0.5 < self.share <= 1.0:
            raise ValueError(f"share must be in (0.5, 1], got {self.share}")
        if self.min_votes < 1:
            raise ValueError(f"min_votes must be >= 1, got {self.min_votes}")

    def should_stop(self, standing: Standing) -> bool:
        """Stop when the leader's weighted share of the parsed votes reaches ``share``."""
        if len(standing.keys) < self.min_votes:
            return False
        masses = standing.masses()
        total = sum(masses.values())
        leader, _ = leader_and_runner_up(masses)
        return total > 0 and leader / total >= self.share


def decided(standing: Standing, min_agreement: float = 0.0) -> bool:
    """Whether the samples still running can no longer change the majority's winner, nor whether
    it abstains under ``min_agreement`` (counts, not weights: the vote counts)."""
    counts = standing.counts()
    if not counts:
        return standing.running == 0
    leader, runner_up = leader_and_runner_up(counts)
    pending = standing.running
    if leader <= runner_up + pending:
        return False
    parsed = sum(counts.values())
    worst = leader / (parsed + pending)  # every running sample votes for another answer
    best = (leader + pending) / (parsed + pending)  # every running sample votes for the leader
    return (worst >= min_agreement) == (best >= min_agreement)
