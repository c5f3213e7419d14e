"""Replays on recorded fixed votes, no engine: the old sequential rounds and the adaptive vote.

The old sequential rounds (Adaptive-Consistency's Beta rule over doubling rounds, 2, 2, 4, 8
samples for 16, each round waiting for its slowest sample) are gone from the server. A fixed
vote's samples are the very samples those rounds drew (sample i is seeded base + i in both), so
replaying the rounds on them gives their tokens and answers exactly; their wall time is the
fixed vote's scaled by the rounds' critical path (the sum over rounds of the longest sample in
the round, over the longest of all), which favours them: it leaves out each round's start-up.

``replay_costs`` tabulates settings replayed by ``evaluation.tuning`` (the in-batch adaptive vote,
``evaluation.rules.replay_adaptive``: the live referee's decisions, stopping and pruning, one
token per sample per engine step; the fixed vote first, as the base), then the old rounds, for
many more items than a live run affords; wall is in engine steps to the last sample's end (exact
for the batch's critical path, blind to per-step cost changing as samples are aborted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench.rig.costs import Cost
from decoding.stopping import (
    BetaStopping,
    ConsensusStopping,
    Standing,
    StoppingRule,
    WindowStopping,
)
from evaluation.judge import ItemRun, JudgedSample
from evaluation.rules import majority_of
from evaluation.tuning import Measured

# The server's default rule first; the others show what another rule would trade (--sweep).
# Every parameter is spelt out, so a change of a class default does not rename a row.
SWEEP: tuple[tuple[str, StoppingRule], ...] = (
    ("esc 3", WindowStopping(3)),
    ("esc 5", WindowStopping(5)),
    ("beta 0.95", BetaStopping(0.95)),
    ("beta 0.9", BetaStopping(0.9)),
    ("beta 0.8", BetaStopping(0.8)),
    ("beta 0.75", BetaStopping(0.75)),
    ("consensus 0.95", ConsensusStopping(0.95, 4)),
    ("consensus 0.6", ConsensusStopping(0.6, 3)),
)


def round_sizes(samples: int) -> list[int]:
    """The old rounds for a cap of ``samples``: 2, then each round doubles the total drawn."""
    sizes = [2]
    while sum(sizes) < samples:
        sizes.append(sum(sizes))
    return sizes


@dataclass(frozen=True)
class Rounds:
    """The old rounds on one fixed vote: the answer, tokens, samples drawn, the critical path
    as a share of the longest sample's length."""

    correct: bool
    tokens: int
    used: int
    share: float


def sequential_rounds(samples: Sequence[JudgedSample]) -> Rounds:
    """Draw round after round in seed order until the Beta rule stops or the samples run out."""
    ordered = sorted(samples, key=lambda s: s.index)
    rule, drawn, path = BetaStopping(0.95), 0, 0
    for size in round_sizes(len(ordered)):
        batch = ordered[drawn : drawn + size]
        drawn += len(batch)
        path += max((s.tokens for s in batch), default=0)
        keys = [s.strict.key for s in ordered[:drawn]]
        if drawn < len(ordered) and rule.should_stop(Standing(keys)):
            break
    used = ordered[:drawn]
    longest = max((s.tokens for s in ordered), default=0) or 1
    return Rounds(majority_of(used).correct, sum(s.tokens for s in used), drawn, path / longest)


def rounds_cost(name: str, fixed: Mapping[str, ItemRun], wall: Callable[[ItemRun], float]) -> Cost:
    """The old rounds over fixed votes; each vote's ``wall`` scaled by the rounds' share."""
    replayed = {item: sequential_rounds(run.samples) for item, run in fixed.items()}
    return Cost(
        name,
        {item: r.correct for item, r in replayed.items()},
        sum(r.tokens for r in replayed.values()),
        sum(wall(fixed[item]) * r.share for item, r in replayed.items()),
        sum(r.used for r in replayed.values()),
    )


def steps(run: ItemRun) -> float:
    """Engine steps to the last sample's end: one token per sample per step."""
    return float(max((s.tokens for s in run.samples), default=0))


def setting_cost(measured: Measured) -> Cost:
    """A replayed setting as a cost row, wall in engine steps."""
    m = measured
    return Cost(m.setting.name, m.right, m.tokens, float(m.steps), m.voted)


def replay_costs(measured: Sequence[Measured], votes: Mapping[str, ItemRun]) -> list[Cost]:
    """The replayed settings (the first, the fixed vote, is the base), then the old rounds on
    the same votes; wall in engine steps."""
    return [*map(setting_cost, measured), rounds_cost("old sequential rounds", votes, steps)]
