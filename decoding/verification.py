"""Verified voting: candidates are checked before they vote, and only those that pass count.

Counting answers rewards what the model says most often; checking them rewards what works. A
``VerifySpec`` says how a sample's extracted answer is checked:

- ``CodeSuite``: the answer is code (the last fenced block); it runs against the tests in a
  sandbox, and passing candidates are grouped by behaviour (the same outputs on the tests and
  on the probe inputs), not by their text;
- ``MathCheck``: the answer is a formula, checked by substitution (``substitute`` values into
  it and compare with ``expected``) or by satisfying an ``equation``.

A ``Verifier`` (the protocol below; the server's runs code in a sandbox and formulas in its
bounded judge) returns one ``Check`` per answer: ``verified`` true, false (the reason says which
test failed and how: an error, a timeout, a limit) or None (nothing to verify, or the check
could not be made). ``verified_vote`` then re-runs the vote among the passing samples only: the
failing ones are excluded (``voted`` false). When none passes, a request with ``min_agreement``
abstains (``unverified``); without it, the plain vote stands and says its winner is unverified.
Each passing sample counts once (confidence weights do not apply to verified votes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

from decoding.consistency import ConsistencyResult, SampleRecord
from decoding.equivalence import Canonical
from decoding.voting import Ballot, vote

CheckStatus = Literal["passed", "failed", "timeout", "limit", "error", "skipped"]


@dataclass(frozen=True)
class CodeSuite:
    """Tests for code answers: assertion strings or ``{"args", "kwargs", "expected", "name"}``
    calls of ``entry_point``, an optional test-file body, probe argument lists, a time limit."""

    tests: tuple[Any, ...] = ()
    entry_point: str | None = None
    test_file: str | None = None
    probes: tuple[tuple[Any, ...], ...] = ()
    timeout_s: float = 5.0


@dataclass(frozen=True)
class MathCheck:
    """A formula check: ``substitute`` values and compare with ``expected``, or satisfy an
    ``equation`` (``lhs = rhs``) when the answer is put for ``variable``."""

    substitute: Mapping[str, str] | None = None
    expected: str | None = None
    equation: str | None = None
    variable: str | None = None


VerifySpec = CodeSuite | MathCheck


@dataclass(frozen=True)
class TestOutcome:
    """One test's result for one candidate."""

    name: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Check:
    """A candidate's verification: verified (None: not checkable), why, and how it behaved."""

    verified: bool | None
    status: CheckStatus
    reason: str | None = None
    behaviour: str | None = None  # equal for candidates that behave alike (code)
    tests: tuple[TestOutcome, ...] = ()


UNCHECKED = Check(None, "skipped", "no answer to verify")
# What a re-vote changes in a result, by the names ``ConsistencyResult`` and ``VoteResult`` share.
_VOTE_FIELDS = ("agreement", "votes", "parsed", "abstained", "abstain_code", "abstain_reason")


@runtime_checkable
class Verifier(Protocol):
    """Checks answers against a spec, each within bounds; one ``Check`` per answer, in order."""

    async def check(self, spec: VerifySpec, answers: Sequence[str | None]) -> list[Check]:
        """The checks of ``answers`` (None answers get ``UNCHECKED``)."""
        ...


@dataclass(frozen=True)
class VerifiedResult:
    """The vote among verified candidates, and every sample's check (aligned with samples)."""

    result: ConsistencyResult
    checks: tuple[Check, ...]
    verified: int
    winner_verified: bool | None


def verified_vote(
    result: ConsistencyResult, checks: Sequence[Check], min_agreement: float = 0.0
) -> VerifiedResult:
    """Re-vote ``result`` among the samples whose check passed (``checks`` align with
    ``result.samples``); code candidates are grouped by behaviour, others keep their key."""
    if len(checks) != len(result.samples):
        raise ValueError(f"{len(checks)} checks for {len(result.samples)} samples")
    keys = {index: group.key for group in result.votes for index in group.indices}
    passing = [
        (record, check)
        for record, check in zip(result.samples, checks, strict=True)
        if record.voted and record.index in keys and check.verified
    ]
    verified = sum(1 for check in checks if check.verified)
    if not passing:
        kept = _none_passed(result, min_agreement)
        return VerifiedResult(kept, tuple(checks), verified, _winner(kept, checks))
    ballots = [
        Ballot(record.index, _canonical(record, check, keys), record.mean_logprob)
        for record, check in passing
    ]
    outcome = vote(ballots, min_agreement=min_agreement)
    voting = {b.index for b in ballots}
    records = tuple(r if r.index in voting else replace(r, voted=False) for r in result.samples)
    winner = None if outcome.abstained else outcome.winner_index
    chosen = None if winner is None else next(r for r in records if r.index == winner)
    same = {name: getattr(outcome, name) for name in _VOTE_FIELDS}
    updated = replace(
        result,
        **same,
        answer=None if chosen is None else chosen.canonical,
        text=None if chosen is None else chosen.text,
        winner_index=winner,
        samples=records,
        truncated=chosen is not None and chosen.finish_reason == "length",
    )
    return VerifiedResult(updated, tuple(checks), verified, _winner(updated, checks))


def _canonical(record: SampleRecord, check: Check, keys: Mapping[int, str]) -> Canonical:
    display = record.canonical or record.answer or ""
    if check.behaviour is not None:
        return Canonical(f"behaviour:{check.behaviour}", display)
    return Canonical(keys[record.index], display)


def _none_passed(result: ConsistencyResult, min_agreement: float) -> ConsistencyResult:
    """No candidate passed: abstain when the request asked for agreement, else keep the vote."""
    if min_agreement <= 0.0 or result.abstained:
        return result
    tried = sum(1 for r in result.samples if r.voted)
    return replace(
        result,
        answer=None,
        text=None,
        winner_index=None,
        abstained=True,
        abstain_code="unverified",
        abstain_reason=f"none of the {tried} candidates passed verification",
        truncated=False,
    )


def _winner(result: ConsistencyResult, checks: Sequence[Check]) -> bool | None:
    if result.winner_index is None:
        return None
    for record, check in zip(result.samples, checks, strict=True):
        if record.index == result.winner_index:
            return check.verified
    return None
