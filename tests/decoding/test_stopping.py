"""Stopping rules checked against their definitions: exact Beta posteriors and ESC windows."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoding.stopping import (
    BetaStopping,
    StoppingRule,
    WindowStopping,
    beta_confidence,
    beta_confidence_exact,
    doubling_rounds,
    leader_and_runner_up,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (0, 0, Fraction(1, 2)),  # uniform prior
        (1, 0, Fraction(3, 4)),  # Beta(2,1): pdf 2x, P(X>1/2) = 1 - 1/4
        (2, 0, Fraction(7, 8)),  # Beta(3,1): pdf 3x^2, 1 - 1/8
        (3, 0, Fraction(15, 16)),  # Beta(4,1): 1 - 1/16
        (4, 0, Fraction(31, 32)),  # first unanimous count over 0.95
        (2, 1, Fraction(11, 16)),  # Beta(3,2): 12 * int_{1/2}^1 x^2 (1 - x) dx
        (5, 1, Fraction(15, 16)),  # sum_{j<=5} C(7,j) / 2^7 = 120/128
        (3, 3, Fraction(1, 2)),  # symmetric
        (1, 2, Fraction(5, 16)),  # = 1 - P(a=2, b=1)
    ],
)
def test_beta_confidence_exact_values(a: int, b: int, expected: Fraction) -> None:
    assert beta_confidence_exact(a, b) == expected


def _beta_tail_by_integration(a: int, b: int, steps: int = 4000) -> float:
    """P(X > 1/2) for X ~ Beta(a+1, b+1) by Simpson's rule on the density."""
    log_norm = math.lgamma(a + b + 2) - math.lgamma(a + 1) - math.lgamma(b + 1)

    def pdf(x: float) -> float:
        return math.exp(log_norm) * x**a * (1 - x) ** b

    h = 0.5 / steps
    total = pdf(0.5) + pdf(1.0)
    total += sum((4 if i % 2 else 2) * pdf(0.5 + i * h) for i in range(1, steps))
    return total * h / 3


@pytest.mark.parametrize(("a", "b"), [(a, b) for a in range(0, 13, 3) for b in range(0, 9, 2)])
def test_beta_confidence_matches_numerical_integration(a: int, b: int) -> None:
    assert beta_confidence(a, b) == pytest.approx(_beta_tail_by_integration(a, b), abs=1e-9)


@given(st.integers(0, 200), st.integers(0, 200))
def test_beta_confidence_is_symmetric_and_monotone(a: int, b: int) -> None:
    assert beta_confidence_exact(a, b) + beta_confidence_exact(b, a) == 1
    assert beta_confidence_exact(a + 1, b) > beta_confidence_exact(a, b)
    assert beta_confidence_exact(a, b + 1) < beta_confidence_exact(a, b)


def test_beta_confidence_large_counts_stay_finite() -> None:
    assert beta_confidence(5000, 4000) == pytest.approx(1.0)
    assert 0.0 < beta_confidence(4000, 4000) < 1.0


def test_beta_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        beta_confidence_exact(-1, 0)


@pytest.mark.parametrize(
    ("counts", "stop"),
    [
        ({}, False),
        ({"x": 3}, False),  # 15/16 < 0.95
        ({"x": 4}, True),  # 31/32
        ({"x": 4, "y": 1}, False),  # sum_{j<=4} C(6,j)/64 = 57/64 = 0.89
        ({"x": 6, "y": 1}, True),  # 247/256 = 0.965
        ({"x": 5, "y": 5, "z": 1}, False),
        ({"x": 9, "y": 3, "z": 3}, True),  # only leader vs runner-up counts
    ],
)
def test_beta_stopping(counts: dict[str, int], stop: bool) -> None:
    assert BetaStopping().should_stop(counts, []) is stop


def test_beta_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        BetaStopping(threshold=0.4)


@pytest.mark.parametrize(
    ("window", "size", "stop"),
    [
        (["a", "a", "a", "a", "a"], 5, True),
        (["b", "a", "a", "a", "a", "a"], 5, True),
        (["a", "a", "a", "a"], 5, False),
        (["a", "a", "b", "a", "a"], 5, False),
        ([None, None, None], 3, False),
        (["a", None, "a"], 3, False),
        (["a"], 1, True),
    ],
)
def test_window_stopping(window: list[str | None], size: int, stop: bool) -> None:
    counts = {k: window.count(k) for k in window if k is not None}
    assert WindowStopping(window=size).should_stop(counts, window) is stop


def test_round_sizes() -> None:
    sizes, drawn = [], 0
    while drawn < 20:
        sizes.append(doubling_rounds(drawn, 20 - drawn))
        drawn += sizes[-1]
    assert sizes == [2, 2, 4, 8, 4]
    assert WindowStopping(window=5).next_round(10, 3) == 3
    assert BetaStopping(first_round=3).next_round(0, 10) == 3


def test_rules_satisfy_the_protocol() -> None:
    assert isinstance(BetaStopping(), StoppingRule)
    assert isinstance(WindowStopping(), StoppingRule)


def test_leader_and_runner_up() -> None:
    assert leader_and_runner_up({}) == (0, 0)
    assert leader_and_runner_up({"a": 2}) == (2, 0)
    assert leader_and_runner_up({"a": 2, "b": 5, "c": 3}) == (5, 3)
