"""Majority vote over canonical answers, keeping the evidence (every group and its samples).

Each ballot carries a weight (1 in a plain majority vote; confidence weights come from
``decoding.weighting``): the answer with the largest summed weight wins, and the agreement is
its share of the parsed ballots' total weight (its share of the votes when unweighted).
Tie-break, fixed so that equal inputs always give equal outputs: among groups with the same
largest weight, the one whose samples have the higher SUM of mean token logprobs wins, if every
tied sample has a logprob; otherwise, or if still tied, the group whose earliest sample index is
smallest. Inside the winning group the sample with the highest mean logprob is the one whose text
is returned (the earliest on ties or without logprobs).

A vote abstains when no sample had an answer (``"no_answer"``) or when the winner's share of the
parsed votes is below ``min_agreement`` (``"low_agreement"``); the leader is still reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from decoding.equivalence import Canonical

AbstainCode = Literal["no_answer", "low_agreement"]


@dataclass(frozen=True)
class Ballot:
    """One sample's vote: its index, its canonical answer (None: no answer), its mean logprob,
    and its weight (1 in a plain majority vote; see ``decoding.weighting``)."""

    index: int
    answer: Canonical | None
    mean_logprob: float | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class VoteGroup:
    """One distinct answer and the samples that gave it (its votes), in index order."""

    answer: str
    key: str
    indices: tuple[int, ...]
    logprob_sum: float | None
    weight: float  # the summed weights of its ballots (its count in a plain majority vote)

    @property
    def count(self) -> int:
        """The group's votes: one per sample."""
        return len(self.indices)


@dataclass(frozen=True)
class VoteResult:
    """The vote's outcome and its evidence; ``winner`` is the leader even when abstaining."""

    winner: str | None
    winner_key: str | None
    winner_index: int | None
    agreement: float
    votes: tuple[VoteGroup, ...]
    parsed: int
    unparsed: int
    abstained: bool
    abstain_code: AbstainCode | None = None
    abstain_reason: str | None = None


def vote(ballots: Sequence[Ballot], *, min_agreement: float = 0.0) -> VoteResult:
    """Group ballots by key, pick the winner with the fixed tie-break, and decide abstention."""
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement}")
    members: dict[str, list[Ballot]] = {}
    for ballot in sorted(ballots, key=lambda b: b.index):
        if ballot.answer is not None:
            members.setdefault(ballot.answer.key, []).append(ballot)
    parsed = sum(len(group) for group in members.values())
    unparsed = len(ballots) - parsed
    if not members:
        reason = f"none of the {len(ballots)} samples had an extractable answer"
        return VoteResult(None, None, None, 0.0, (), 0, unparsed, True, "no_answer", reason)

    groups = [_group(key, group) for key, group in members.items()]
    groups.sort(key=lambda g: (-g.weight, g.indices[0]))
    winner = _break_tie([g for g in groups if g.weight == groups[0].weight])
    ordered = (winner, *(g for g in groups if g is not winner))
    mass = sum(g.weight for g in groups)
    agreement = winner.weight / mass if mass > 0 else 0.0
    best = max(members[winner.key], key=lambda b: (_lp(b), -b.index))
    result = VoteResult(
        winner.answer, winner.key, best.index, agreement, ordered, parsed, unparsed, False
    )
    if agreement < min_agreement:
        support = (
            f"{winner.count} of {parsed} parsed votes"
            if all(b.weight == 1.0 for group in members.values() for b in group)
            else f"weight {winner.weight:.3g} of {mass:.3g}"
        )
        reason = f"agreement {agreement:.3f} ({support}) is below min_agreement {min_agreement:.3f}"
        return VoteResult(
            winner.answer,
            winner.key,
            best.index,
            agreement,
            ordered,
            parsed,
            unparsed,
            True,
            "low_agreement",
            reason,
        )
    return result


def _group(key: str, ballots: list[Ballot]) -> VoteGroup:
    logprobs = [b.mean_logprob for b in ballots]
    known = [lp for lp in logprobs if lp is not None]
    total = sum(known) if len(known) == len(logprobs) else None
    display = ballots[0].answer.display if ballots[0].answer is not None else key
    weight = sum(b.weight for b in ballots)
    return VoteGroup(display, key, tuple(b.index for b in ballots), total, weight)


def _break_tie(tied: list[VoteGroup]) -> VoteGroup:
    """Highest summed mean logprob if all tied samples have one, then the earliest first sample."""
    if len(tied) > 1 and all(g.logprob_sum is not None for g in tied):
        return max(tied, key=lambda g: (g.logprob_sum or 0.0, -g.indices[0]))
    return min(tied, key=lambda g: g.indices[0])


def _lp(ballot: Ballot) -> float:
    return ballot.mean_logprob if ballot.mean_logprob is not None else float("-inf")
