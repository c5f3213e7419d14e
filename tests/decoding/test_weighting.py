"""Confidence-aware voting: weights, the keep-top filter, and weighted votes, in tables."""

from __future__ import annotations

import math

import pytest

from decoding.confidence import Confidence
from decoding.equivalence import Canonical
from decoding.voting import Ballot, vote
from decoding.weighting import Signals, Weighting, most_confident, weigh, weights


def conf(lowest: float, tail: float | None = None, mean: float | None = None) -> Confidence:
    """A trace confidence (tail and mean default to the lowest group)."""
    return Confidence(
        mean=lowest if mean is None else mean, lowest_group=lowest, tail=tail or lowest
    )


SIGNALS = [Signals(-0.1, conf(9.0)), Signals(-1.0, conf(2.0)), Signals(None, None)]


@pytest.mark.parametrize(
    ("weighting", "expected"),
    [
        ("majority", [1.0, 1.0, 1.0]),
        ("logprob", [math.exp(-0.1), math.exp(-1.0), 0.0]),
        ("lowest_group", [9.0, 2.0, 0.0]),
        ("tail", [9.0, 2.0, 0.0]),
        ("mean", [9.0, 2.0, 0.0]),
    ],
)
def test_weights(weighting: Weighting, expected: list[float]) -> None:
    assert weights(SIGNALS, weighting) == pytest.approx(expected)


def test_cisc_is_a_softmax_over_the_request_and_uses_deepconf_mean_when_present() -> None:
    found = weights(SIGNALS, "cisc", cisc_temperature=0.5)
    assert sum(found) == pytest.approx(1.0)
    assert found[0] == pytest.approx(1 / (1 + math.exp((2.0 - 9.0) / 0.5)))
    assert found[2] == 0.0, "no signal: no weight"
    plain = weights([Signals(-0.2, None), Signals(-0.4, None)], "cisc", 0.5)
    assert plain[0] > plain[1], "without DeepConf's mean, the mean logprob ranks them"


@pytest.mark.parametrize(
    ("share", "expected"),
    [(1.0, {0, 1, 2}), (0.5, {0, 1}), (0.1, {0}), (0.34, {0, 1})],
)
def test_most_confident_keeps_the_top_share_at_least_one(share: float, expected: set[int]) -> None:
    assert most_confident(SIGNALS, share) == expected


def test_most_confident_falls_back_to_mean_logprob_and_breaks_ties_by_order() -> None:
    plain = [Signals(-0.5, None), Signals(-0.1, None), Signals(-0.1, None)]
    assert most_confident(plain, 0.3) == {1}


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_bad_shares_are_refused(share: float) -> None:
    with pytest.raises(ValueError):
        most_confident(SIGNALS, share)


def ballot(index: int, answer: str, lp: float | None = -0.5) -> Ballot:
    return Ballot(index, Canonical(f"num:{answer}", answer), lp)


def test_confidence_weights_can_overturn_a_slim_majority() -> None:
    ballots = [ballot(0, "5"), ballot(1, "5"), ballot(2, "6")]
    confidences = {0: conf(1.0), 1: conf(1.0), 2: conf(5.0)}
    assert vote(weigh(ballots, confidences, "majority")).winner == "5"
    weighted = vote(weigh(ballots, confidences, "lowest_group"))
    assert weighted.winner == "6"
    assert weighted.agreement == pytest.approx(5.0 / 7.0)
    assert weighted.votes[0].count == 1 and weighted.votes[0].weight == pytest.approx(5.0)


def test_keep_top_drops_the_least_confident_before_the_vote() -> None:
    ballots = [ballot(0, "6"), ballot(1, "5"), ballot(2, "5"), ballot(3, "6")]
    confidences = {0: conf(1.0), 1: conf(8.0), 2: conf(7.0), 3: conf(2.0)}
    kept = weigh(ballots, confidences, keep_top=0.5)
    assert [b.index for b in kept] == [1, 2]
    assert vote(kept).winner == "5"


def test_unweighted_votes_are_unchanged() -> None:
    ballots = [
        ballot(0, "6", -0.1),
        ballot(1, "5", -0.9),
        ballot(2, "5", -0.9),
        ballot(3, "6", -0.1),
    ]
    result = vote(weigh(ballots, {}, "majority"))
    assert result.winner == "6", "a tie still goes to the higher summed logprob"
    assert result.agreement == 0.5
