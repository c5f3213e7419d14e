"""Wilson intervals against published values; exact McNemar p-values against hand computation."""

from __future__ import annotations

import pytest

from evaluation.stats import compare, mcnemar_exact, wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        # By hand: centre 0.5 + 1.96²/20, spread 1.96·sqrt(0.025 + 1.96²/400), over 1 + 1.96²/10.
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (0, 10, 0.0, 0.2775),
    ],
)
def test_wilson_matches_known_intervals(k: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson(k, n)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


def test_wilson_without_trials_is_uninformative() -> None:
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("k", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_refuses_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson(k, n)


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),  # no discordant pair: no evidence either way
        (0, 5, 2 / 32),  # 2 * C(5,0) / 2^5
        (1, 5, 2 * 7 / 64),  # 2 * (C(6,0) + C(6,1)) / 2^6
        (2, 8, 2 * 56 / 1024),  # 2 * (1 + 10 + 45) / 2^10
        (3, 12, 2 * 576 / 32768),  # 2 * (1 + 15 + 105 + 455) / 2^15
        (5, 5, 1.0),  # the doubled tail passes 1 and is capped
        (0, 1, 1.0),
        (0, 30, 2 / 2**30),  # tiny, and still exact
    ],
)
def test_mcnemar_exact_p_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)
    assert mcnemar_exact(c, b) == mcnemar_exact(b, c)


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="discordant"):
        mcnemar_exact(-1, 2)


def test_compare_counts_only_shared_items() -> None:
    a = {"q1": True, "q2": True, "q3": False, "q4": False, "only-a": True}
    b = {"q1": True, "q2": False, "q3": True, "q4": False, "only-b": False}
    paired = compare("a", "b", a, b)
    assert (paired.items, paired.both, paired.only_a, paired.only_b, paired.neither) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert paired.p_value == 1.0
