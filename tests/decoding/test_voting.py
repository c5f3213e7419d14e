"""Voting: counts, agreement, the fixed tie-break, abstention, and the cost of a 64-sample vote."""

from __future__ import annotations

import pytest

from decoding.equivalence import Canonical
from decoding.extraction import extract_answer
from decoding.normalizer import AnswerNormalizer
from decoding.voting import Ballot, vote


def ballots(keys: list[str | None], logprobs: list[float | None] | None = None) -> list[Ballot]:
    lps = logprobs or [None] * len(keys)
    return [
        Ballot(i, None if k is None else Canonical(f"k:{k}", k), lp)
        for i, (k, lp) in enumerate(zip(keys, lps, strict=True))
    ]


def test_majority_with_evidence() -> None:
    result = vote(ballots(["a", "b", "a", None, "c", "a"]))
    assert (result.winner, result.winner_index) == ("a", 0)
    assert result.agreement == pytest.approx(3 / 5)
    assert (result.parsed, result.unparsed) == (5, 1)
    assert [(g.answer, g.count, g.indices) for g in result.votes] == [
        ("a", 3, (0, 2, 5)),
        ("b", 1, (1,)),
        ("c", 1, (4,)),
    ]
    assert not result.abstained


@pytest.mark.parametrize(
    ("keys", "logprobs", "winner"),
    [
        # no logprobs: earliest first sample wins
        (["b", "a", "a", "b"], None, "b"),
        (["a", "b"], None, "a"),
        # higher summed mean logprob of the tied group wins
        (["b", "a", "a", "b"], [-1.0, -0.1, -0.2, -1.0], "a"),
        (["b", "a", "a", "b"], [-0.1, -0.5, -0.5, -0.2], "b"),
        # equal sums fall back to the earliest sample
        (["b", "a"], [-0.5, -0.5], "b"),
        # an unknown logprob in a tied group disables the logprob rule
        (["b", "a", "a", "b"], [-1.0, -0.1, None, -1.0], "b"),
        # logprobs never beat a larger count
        (["a", "a", "b"], [-5.0, -5.0, -0.01], "a"),
    ],
)
def test_tie_break(
    keys: list[str | None], logprobs: list[float | None] | None, winner: str
) -> None:
    assert vote(ballots(keys, logprobs)).winner == winner


def test_winning_sample_is_the_most_confident_of_its_group() -> None:
    result = vote(ballots(["a", "b", "a", "a"], [-0.9, -0.1, -0.3, -0.5]))
    assert (result.winner, result.winner_index) == ("a", 2)


def test_ballot_order_does_not_matter() -> None:
    forward = ballots(["b", "a", "a", "b", "c"])
    assert vote(forward) == vote(list(reversed(forward)))


def test_all_unparsable_abstains() -> None:
    result = vote(ballots([None, None, None]))
    assert result.abstained and result.abstain_code == "no_answer"
    assert result.abstain_reason is not None and "3 samples" in result.abstain_reason
    assert (result.winner, result.winner_index, result.agreement) == (None, None, 0.0)
    assert (result.parsed, result.unparsed, result.votes) == (0, 3, ())


def test_no_ballots_abstains() -> None:
    assert vote([]).abstain_code == "no_answer"


@pytest.mark.parametrize(
    ("min_agreement", "abstained"), [(0.0, False), (0.5, False), (0.51, True), (1.0, True)]
)
def test_min_agreement(min_agreement: float, abstained: bool) -> None:
    result = vote(ballots(["a", "a", "b", "c", None]), min_agreement=min_agreement)
    assert result.abstained is abstained
    assert result.winner == "a"  # the leader is reported either way
    if abstained:
        assert result.abstain_code == "low_agreement"
        assert result.abstain_reason is not None and "0.500" in result.abstain_reason


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_min_agreement_is_validated(bad: float) -> None:
    with pytest.raises(ValueError, match="min_agreement"):
        vote([], min_agreement=bad)


def test_unanimity_is_full_agreement() -> None:
    assert vote(ballots(["a"] * 7 + [None])).agreement == 1.0


async def test_sixty_four_mixed_samples_vote_together() -> None:
    texts = [
        "Reasoning... so the answer is $\\frac{1}{2}$.",
        "We find \\boxed{0.5}",
        "Half: 1/2\n#### 1/2",
        "Thus \\boxed{\\dfrac{2}{4}}",
        "The answer is 2\\sqrt{2}.",
        "So \\boxed{\\sqrt{8}}",
        "Final answer: 1,000",
        "I give up.",
    ] * 8
    normalizer = AnswerNormalizer("auto")
    found = [extract_answer(t, "auto") for t in texts]
    canon = [None if a is None else (await normalizer.canonical(a)).canonical for a in found]
    result = vote([Ballot(i, c) for i, c in enumerate(canon)])
    assert result.winner == "0.5"
    assert [g.count for g in result.votes] == [32, 16, 8]
    assert result.unparsed == 8
