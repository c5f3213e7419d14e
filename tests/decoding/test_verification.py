"""Verified voting's pure logic: who votes after the checks, how they group, when it abstains;
and formula checks by substitution and by equation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from decoding.math_check import check_math
from decoding.self_consistency import ConsistencyResult, SampleRecord
from decoding.verification import UNCHECKED, Check, MathCheck, verified_vote
from decoding.voting import VoteGroup

PASS = Check(True, "passed", "passed 2 tests", behaviour="b1")
PASS_OTHER = Check(True, "passed", "passed 2 tests", behaviour="b2")
FAIL = Check(False, "failed", "test_0: expected 3, got -1")
TIMEOUT = Check(False, "timeout", "wall-clock timeout in test_0")


def _result(answers: list[str | None], logprobs: list[float] | None = None) -> ConsistencyResult:
    """A plain vote's result over code answers (text keys), as self_consistency gives it."""
    records = tuple(
        SampleRecord(
            i, f"```python\n{a}\n```", a, a, "stop", i, (logprobs or [None] * 9)[i], 5, True
        )
        for i, a in enumerate(answers)
    )
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        if a is not None:
            groups.setdefault(a, []).append(i)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    votes = tuple(VoteGroup(a, f"code:{a}", tuple(ix), None, len(ix)) for a, ix in ordered)
    top = ordered[0] if ordered else None
    return ConsistencyResult(
        answer=None if top is None else top[0],
        text=None if top is None else records[top[1][0]].text,
        winner_index=None if top is None else top[1][0],
        agreement=0.0 if top is None else len(top[1]) / sum(len(v) for _, v in ordered),
        votes=votes,
        samples=records,
        samples_used=len(records),
        parsed=sum(len(v) for _, v in ordered),
        unparsed=sum(1 for a in answers if a is None),
        abstained=top is None,
        abstain_code=None if top else "no_answer",
        abstain_reason=None,
        stopped_early=False,
        budget_exhausted=False,
        budget_reason=None,
        prompt_tokens=3,
        completion_tokens=5 * len(records),
        engine_requests=1,
    )


@pytest.mark.parametrize(
    ("answers", "checks", "winner", "voted", "verified", "winner_verified"),
    [
        # The plain majority (the wrong "a-b" twice) loses to the one that passes.
        (["a-b", "a-b", "a+b"], [FAIL, FAIL, PASS], 2, [False, False, True], 1, True),
        # Different texts, same behaviour: one group of two beats a group of one.
        (["a+b", "b+a", "sum"], [PASS, PASS, PASS_OTHER], 0, [True, True, True], 3, True),
        # Behaviour, not text: the same text cannot split, but equal behaviour merges.
        (["x", "y", "z"], [PASS_OTHER, PASS, PASS], 1, [True, True, True], 3, True),
        # A sample with no answer is not checked and does not vote.
        ([None, "a+b"], [UNCHECKED, PASS], 1, [True, True], 1, True),
        # Timeouts count as failures.
        (["loop", "a+b"], [TIMEOUT, PASS], 1, [False, True], 1, True),
    ],
)
def test_only_passing_candidates_vote(
    answers: list[str | None],
    checks: list[Check],
    winner: int,
    voted: list[bool],
    verified: int,
    winner_verified: bool,
) -> None:
    outcome = verified_vote(_result(answers), checks)
    assert outcome.result.winner_index == winner
    assert outcome.result.answer == answers[winner]
    assert [r.voted for r in outcome.result.samples if r.answer is not None] == [
        v for v, a in zip(voted, answers, strict=True) if a is not None
    ]
    assert (outcome.verified, outcome.winner_verified) == (verified, winner_verified)
    assert sum(g.count for g in outcome.result.votes) == sum(1 for c in checks if c.verified)


def test_tie_between_behaviours_goes_to_the_higher_logprob_group() -> None:
    result = _result(["x", "y"], logprobs=[-2.0, -0.5])
    outcome = verified_vote(result, [PASS, PASS_OTHER])
    assert outcome.result.winner_index == 1
    assert outcome.result.agreement == 0.5


@pytest.mark.parametrize("min_agreement", [0.0, 0.5])
def test_none_passing(min_agreement: float) -> None:
    result = _result(["a-b", "a-b", "a*b"])
    outcome = verified_vote(result, [FAIL, FAIL, TIMEOUT], min_agreement)
    assert outcome.verified == 0
    if min_agreement:
        assert outcome.result.abstained and outcome.result.abstain_code == "unverified"
        assert outcome.result.answer is None and outcome.result.text is None
        assert "none of the 3 candidates passed" in (outcome.result.abstain_reason or "")
        assert outcome.winner_verified is None
    else:  # the plain vote stands, and says its winner is unverified
        assert outcome.result.answer == "a-b" and not outcome.result.abstained
        assert outcome.winner_verified is False


def test_low_agreement_among_verified_abstains() -> None:
    outcome = verified_vote(_result(["x", "y", "z"]), [PASS, PASS_OTHER, FAIL], 0.6)
    assert outcome.result.abstained and outcome.result.abstain_code == "low_agreement"
    assert outcome.verified == 2


def test_a_sample_the_confidence_filter_left_out_stays_out() -> None:
    result = _result(["a+b", "a+b"])
    result = replace(result, samples=(result.samples[0], replace(result.samples[1], voted=False)))
    outcome = verified_vote(result, [PASS, PASS])
    assert [r.voted for r in outcome.result.samples] == [True, False]
    assert outcome.result.votes[0].indices == (0,)


def test_checks_must_align_with_samples() -> None:
    with pytest.raises(ValueError, match="2 checks for 3 samples"):
        verified_vote(_result(["a", "b", "c"]), [PASS, PASS])


EQUATION = MathCheck(equation="x^2 - 5x + 6 = 0")


@pytest.mark.parametrize(
    ("answer", "spec", "verified"),
    [
        ("3", EQUATION, True),
        ("x = 2", EQUATION, True),
        ("\\frac{6}{3}", EQUATION, True),
        ("4", EQUATION, False),
        ("no idea", EQUATION, False),
        ("", EQUATION, False),
        ("\\frac{1}{2}", MathCheck(equation="2y = 1"), True),
        ("0.5", MathCheck(equation="2y = 1", variable="y"), True),
        ("2x + 1", MathCheck(substitute={"x": "3"}, expected="7"), True),
        ("2x + 2", MathCheck(substitute={"x": "3"}, expected="7"), False),
        ("x y", MathCheck(substitute={"x": "2", "y": "\\frac{1}{2}"}, expected="1"), True),
        ("x + z", MathCheck(substitute={"x": "1"}, expected="1"), False),  # z has no value
        ("\\sqrt{2}", MathCheck(substitute={}, expected="2^{1/2}"), True),
        ("1", MathCheck(equation="a + b = 1"), None),  # no single unknown to put it for
    ],
)
def test_math_checks(answer: str, spec: MathCheck, verified: bool | None) -> None:
    check = check_math(answer, spec)
    assert check.verified is verified, check
    assert check.reason
