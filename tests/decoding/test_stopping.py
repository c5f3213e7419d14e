"""Stopping rules checked against their definitions: exact and weighted Beta posteriors, ESC
windows, DeepConf's weighted consensus, and when running samples can no longer change a vote."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoding.stopping import (
    BetaStopping,
    ConsensusStopping,
    Standing,
    StoppingRule,
    WindowStopping,
    beta_confidence,
    beta_confidence_exact,
    decided,
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
    keys = [key for key, count in counts.items() for _ in range(count)]
    assert BetaStopping().should_stop(Standing(keys)) is stop


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
    assert WindowStopping(window=size).should_stop(Standing(window)) is stop


def test_rules_satisfy_the_protocol() -> None:
    assert isinstance(BetaStopping(), StoppingRule)
    assert isinstance(WindowStopping(), StoppingRule)
    assert isinstance(ConsensusStopping(), StoppingRule)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.0), (3.7, 1.2), (6.0, 1.5), (2.25, 2.25)])
def test_weighted_beta_matches_numerical_integration(a: float, b: float) -> None:
    log_norm = math.lgamma(a + b + 2) - math.lgamma(a + 1) - math.lgamma(b + 1)
    steps = 4000
    h = 0.5 / steps

    def pdf(x: float) -> float:
        return math.exp(log_norm) * x**a * (1 - x) ** b

    total = pdf(0.5) + pdf(1.0)
    total += sum((4 if i % 2 else 2) * pdf(0.5 + i * h) for i in range(1, steps))
    assert beta_confidence(a, b) == pytest.approx(total * h / 3, abs=1e-7)


@pytest.mark.parametrize(
    ("keys", "weights", "stop"),
    [
        (["x", "x", "x", "x", "y"], None, False),  # counts 4 vs 1: 57/64 = 0.89
        (["x", "x", "x", "x", "y"], [1, 1, 1, 1, 1], False),  # unit weights are the counts
        (["x", "x", "x", "x", "y"], [2, 2, 2, 2, 0.1], True),  # the dissenter barely counts
        (["x", "x", "x", "y"], [1, 1, 1, 3], False),  # masses 2 and 2
        (["x", "y", "y", "y", "y", "y"], [9, 0.2, 0.2, 0.2, 0.2, 0.2], True),  # 5.4 vs 0.6
    ],
)
def test_weighted_beta_stopping(keys: list[str], weights: list[float] | None, stop: bool) -> None:
    assert BetaStopping().should_stop(Standing(keys, weights)) is stop


def test_masses_are_rescaled_to_a_mean_weight_of_one() -> None:
    standing = Standing(["a", "b", None, "a"], [2.0, 4.0, 1.0, 1.0])
    assert standing.masses() == pytest.approx({"a": 1.5, "b": 2.0})
    assert Standing(["a", None, "a"]).masses() == {"a": 2.0}
    assert Standing(["a"], [0.0]).masses() == {"a": 0.0}


@pytest.mark.parametrize(
    ("keys", "weights", "stop"),
    [
        (["x", "x", "x"], None, False),  # fewer than min_votes
        (["x", "x", "x", "x"], None, True),
        (["x", "x", "x", "x", None], None, True),  # unparsed votes are not counted
        (["x"] * 9 + ["y"], None, False),  # 0.9 < 0.95
        (["x"] * 9 + ["y"], [1.0] * 9 + [0.2], True),  # 9 / 9.2 = 0.978
        (["x", "x", "y", "y"], [5, 5, 0.1, 0.1], True),
    ],
)
def test_consensus_stopping(
    keys: list[str | None], weights: list[float] | None, stop: bool
) -> None:
    assert ConsensusStopping(share=0.95, min_votes=4).should_stop(Standing(keys, weights)) is stop


@pytest.mark.parametrize(
    ("keys", "running", "min_agreement", "settled"),
    [
        (["a", "a", "a"], 2, 0.0, True),  # 3 > 0 + 2
        (["a", "a", "a"], 3, 0.0, False),  # three more votes could tie
        (["a", "a", "b"], 0, 0.0, True),
        (["a", "b"], 1, 0.0, False),
        ([None, None], 1, 0.0, False),  # nothing parsed yet
        ([], 0, 0.0, True),
        (["a"] * 6 + ["b"], 4, 0.0, True),  # 6 > 1 + 4
        (["a"] * 6 + ["b"], 4, 0.6, False),  # 6/11 < 0.6 <= 10/11: abstention still open
        (["a"] * 6 + ["b"], 4, 0.5, True),  # at worst 6/11 >= 0.5
        (["a"] * 6 + ["b"], 4, 0.95, True),  # at best 10/11 < 0.95: abstains either way
    ],
)
def test_decided(keys: list[str | None], running: int, min_agreement: float, settled: bool) -> None:
    assert decided(Standing(keys, running=running), min_agreement) is settled


def test_standing_is_validated() -> None:
    with pytest.raises(ValueError, match="one weight per key"):
        Standing(["a"], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        Standing(["a"], [-1.0])
    with pytest.raises(ValueError, match="share"):
        ConsensusStopping(share=0.5)


def test_leader_and_runner_up() -> None:
    assert leader_and_runner_up({}) == (0, 0)
    assert leader_and_runner_up({"a": 2}) == (2, 0)
    assert leader_and_runner_up({"a": 2, "b": 5, "c": 3}) == (5, 3)
