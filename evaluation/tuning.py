"""Choosing adaptive precise mode's defaults by replay: stopping rules crossed with pruning
settings, replayed on recorded fixed votes, measured against those votes, chosen by a stated rule.

A *setting* is what a request can ask: a stopping rule (``adaptive: true``) or none (a fixed vote),
and pruning (``prune: true`` with a warm-up and a percentile) or none. Each is replayed by
``evaluation.rules.replay_adaptive`` (the live referee's decisions, one token per sample per
engine step) on every pooled vote and measured: completion tokens, engine steps to the last
sample's end, samples pruned and voting, and which votes it answered right. The fixed vote (no
rule, no pruning) on the same samples is the base (``bench.rig.replay`` tabulates the ratios,
intervals and paired tests).

``choose`` is the rule the defaults are picked by, fixed before any setting is measured: among the
candidates whose accuracy is not below the fixed vote's by more than ``loss_per_100`` items per
100 (rounded down: 1 item of 105), the fewest tokens; ties go to fewer engine steps, then to the
earlier candidate (the grid lists no pruning first and today's defaults first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from decoding.pruning import PruneSpec
from decoding.stopping import StoppingRule
from evaluation.judge import ItemRun, judge_record
from evaluation.results import is_ok, read_records
from evaluation.rules import replay_adaptive

FIXED_VOTE = "fixed vote"
Votes = Mapping[str, ItemRun]  # "file:config:item" -> the recorded fixed vote


@dataclass(frozen=True)
class Setting:
    """One way of running the vote: a stopping rule (None: wait for all) and pruning."""

    name: str
    rule: str | None  # the stopping rule's name in the grid
    stopping: StoppingRule | None
    prune: PruneSpec | None


def setting_name(rule: str | None, prune: PruneSpec | None) -> str:
    """``beta 0.95 + prune w4 p10``; ``fixed`` for no rule; ``fixed vote`` for neither."""
    if prune is None:
        return rule or FIXED_VOTE
    return f"{rule or 'fixed'} + prune w{prune.warmup} p{prune.percentile:g}"


def grid(
    rules: Sequence[tuple[str, StoppingRule]],
    warmups: Iterable[int] = (),
    percentiles: Iterable[float] = (),
) -> list[Setting]:
    """The fixed vote, each rule alone, then pruning alone and under each rule, in that order."""
    prunes = [PruneSpec(w, p) for w in warmups for p in percentiles]
    named: list[tuple[str | None, StoppingRule | None]] = [(None, None), *rules]
    settings = [Setting(setting_name(n, None), n, r, None) for n, r in named]
    for name, rule in named:
        settings += [Setting(setting_name(name, p), name, rule, p) for p in prunes]
    return settings


def load_votes(
    paths: Sequence[Path], configs: Sequence[str], samples: int | None = None
) -> dict[str, ItemRun]:
    """The last OK vote of each (file, config, item), keyed file:config:item, cut to its first
    ``samples`` (sample i is seeded seed + i: the first 8 of a vote of 16 are a vote of 8)."""
    votes: dict[str, ItemRun] = {}
    for path in paths:
        for record in read_records(path):
            if not is_ok(record) or record["config"]["name"] not in configs:
                continue
            run = judge_record(record)
            kept = tuple(s for s in run.samples if samples is None or s.index < samples)
            if samples is not None and len(kept) < samples:
                raise ValueError(f"{path}: {run.item_id} has {len(kept)} < {samples} samples")
            votes[f"{path.name}:{run.config}:{run.item_id}"] = replace(run, samples=kept)
    found = {run.config for run in votes.values()}
    if missing := [c for c in configs if c not in found]:
        raise ValueError(f"no OK runs of {missing} in {[str(p) for p in paths]}")
    return votes


@dataclass(frozen=True)
class Measured:
    """A setting replayed on every vote: tokens, engine steps, samples pruned and voting, and
    right or not per vote."""

    setting: Setting
    tokens: int
    steps: int
    pruned: int
    voted: int
    right: dict[str, bool]

    @property
    def correct(self) -> int:
        """Votes answered right."""
        return sum(self.right.values())


def measure(setting: Setting, votes: Votes, window: int = 32) -> Measured:
    """Replay the setting on every vote (``window``: the confidence window, the server's 32)."""
    tokens = steps = pruned = voted = 0
    right: dict[str, bool] = {}
    for key, run in votes.items():
        replay = replay_adaptive(run.samples, setting.stopping, prune=setting.prune, window=window)
        tokens += replay.tokens
        steps += replay.steps
        pruned += replay.pruned
        voted += replay.decision.used
        right[key] = replay.decision.correct
    return Measured(setting, tokens, steps, pruned, voted, right)


def eligible(measured: Measured, base: Measured, loss_per_100: float = 1.0) -> bool:
    """Right on at least as many votes as the fixed vote, less ``loss_per_100`` per 100 votes."""
    allowed = math.floor(loss_per_100 * len(base.right) / 100 + 1e-9)
    return measured.correct >= base.correct - allowed


def choose(
    candidates: Sequence[Measured], base: Measured, loss_per_100: float = 1.0
) -> Measured | None:
    """The rule of the module docstring: the fewest tokens among the eligible candidates."""
    kept = [(m.tokens, m.steps, i, m) for i, m in enumerate(candidates)]
    kept = [entry for entry in kept if eligible(entry[3], base, loss_per_100)]
    return min(kept, key=lambda entry: entry[:3])[3] if kept else None


@dataclass(frozen=True)
class Defaults:
    """What the measurement picks: the stopping rule ``adaptive`` uses alone, the pruning
    setting under it, and whether pruning a fixed vote with that setting pays by default."""

    stopping: Measured | None
    prune: Measured | None
    prune_alone: Measured | None
    prune_by_default: bool


def choose_defaults(
    measured: Sequence[Measured],
    base: Measured,
    *,
    loss_per_100: float = 1.0,
    min_saving: float = 0.1,
    fallback_rule: str | None = None,
) -> Defaults:
    """``choose`` three times: among the rules alone; among the pruning settings under the chosen
    rule (``fallback_rule`` if none is eligible); then pruning is on by default only if the fixed
    vote pruned so is eligible and saves at least ``min_saving`` of the tokens (pruning changes the
    request's shape: one engine request per sample, top-k logprobs)."""
    alone = [m for m in measured if m.setting.rule is not None and m.setting.prune is None]
    stopping = choose(alone, base, loss_per_100)
    rule = fallback_rule if stopping is None else stopping.setting.rule
    under = [m for m in measured if m.setting.rule == rule and m.setting.prune is not None]
    prune = choose(under, base, loss_per_100)
    spec = None if prune is None else prune.setting.prune
    pruned = [m for m in measured if m.setting.rule is None and m.setting.prune == spec]
    prune_alone = pruned[0] if pruned and spec is not None else None
    on = (
        prune_alone is not None
        and eligible(prune_alone, base, loss_per_100)
        and prune_alone.tokens <= (1 - min_saving) * base.tokens
    )
    return Defaults(stopping, prune, prune_alone, on)
