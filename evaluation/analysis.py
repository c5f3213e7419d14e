"""From re-judged runs to scored systems: (config, rule, N) triples, adaptive rules, abstention.

A *system* is one way of answering every item, scored per item: the greedy config; each vote rule
at each N of 1, 2, 4, 8, 16 on the seeded prefixes of a multi-sample config (the first N samples
of a 16-sample request ARE an N-sample request: sample i has seed base + i); each adaptive
stopping rule replayed on the same prefixes; and the server's own answer, as a cross-check that
the offline ``majority`` at full N reproduces it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluation.judge import ItemRun
from evaluation.rules import RULES, STOPPING, Context, Decision, simulate_adaptive, support
from evaluation.stats import Paired, compare, wilson

NS = (1, 2, 4, 8, 16)
THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
Runs = Mapping[str, Mapping[str, ItemRun]]  # config -> item id -> run


@dataclass
class System:
    """One way of answering: its decisions per item id."""

    name: str
    config: str
    rule: str
    n: int | None
    decisions: dict[str, Decision] = field(default_factory=dict)

    def right(self) -> dict[str, bool]:
        """Item id -> correct."""
        return {item: d.correct for item, d in self.decisions.items()}


def rate(successes: int, trials: int) -> dict[str, Any]:
    """A proportion with its Wilson 95% interval."""
    low, high = wilson(successes, trials)
    value = successes / trials if trials else None
    return {"k": successes, "n": trials, "rate": value, "ci95": [low, high]}


def cap_of(runs: Mapping[str, ItemRun]) -> int:
    """The samples per request of a config (the most any of its runs holds)."""
    return max((len(r.samples) for r in runs.values()), default=0)


def greedy_config(runs: Runs) -> str | None:
    """The config used as the greedy baseline: one named ``greedy``, else the first 1-sample one."""
    singles = [c for c, r in runs.items() if cap_of(r) == 1]
    return "greedy" if "greedy" in singles else (singles[0] if singles else None)


def default_config(runs: Runs) -> str | None:
    """The config closest to precise mode's defaults: temperature 0.7, no suffix or extras,
    the most samples; else the first multi-sample config."""
    multi = [c for c, r in runs.items() if cap_of(r) > 1]

    def plain(config: str) -> bool:
        spec = next(iter(runs[config].values())).config_spec
        return spec.get("temperature") == 0.7 and not spec.get("suffix") and not spec.get("extra")

    candidates = [c for c in multi if plain(c)] or multi
    return max(candidates, key=lambda c: cap_of(runs[c]), default=None)


def build_systems(runs: Runs) -> tuple[list[System], list[str]]:
    """Every system the runs allow, and notes on the rules that could not apply."""
    systems: list[System] = []
    notes: list[str] = []
    baseline = greedy_config(runs)
    greedy_runs = runs.get(baseline, {}) if baseline else {}
    for config, by_item in runs.items():
        cap = cap_of(by_item)
        if cap <= 1:
            systems.append(_fixed(config, config, "majority", 1, by_item, greedy_runs))
            continue
        ns = sorted({n for n in NS if n <= cap} | {cap})
        for rule in RULES:
            for n in ns:
                system = _fixed(f"{config}/{rule}@{n}", config, rule, n, by_item, greedy_runs)
                if not system.decisions:
                    notes.append(_absent(config, rule))
                    break
                if len(system.decisions) < len(by_item) and n == cap:
                    notes.append(
                        f"{config}/{rule}: applied on {len(system.decisions)} of "
                        f"{len(by_item)} items (its signal is missing on the rest)"
                    )
                systems.append(system)
        for name, stopping in STOPPING.items():
            system = System(f"{config}/adaptive-{name}", config, f"adaptive-{name}", cap)
            for item, run in by_item.items():
                system.decisions[item] = simulate_adaptive(run.samples, stopping)
            systems.append(system)
        server = System(f"{config}/server", config, "server", cap)
        for item, run in by_item.items():
            right = bool(run.server_answer_correct)
            server.decisions[item] = Decision(None, right, 1.0, len(run.samples))
        systems.append(server)
        if not all(r.consecutive_seeds for r in by_item.values()):
            notes.append(f"{config}: some samples' seeds are not base + i; prefixes are not runs")
    return systems, notes


def _absent(config: str, rule: str) -> str:
    if rule.startswith("deepconf"):
        field_name = rule.removeprefix("deepconf-").replace("-", "_")
        return (
            f"{config}/{rule}: skipped, no sample carries confidence.{field_name} "
            "in the results (a server without per-sample confidence sends none)"
        )
    if rule == "greedy+vote":
        return f"{config}/{rule}: skipped, no greedy config in the results to join"
    return f"{config}/{rule}: skipped, its signal (mean logprob) is missing"


def _fixed(
    name: str,
    config: str,
    rule: str,
    n: int,
    by_item: Mapping[str, ItemRun],
    greedy_runs: Mapping[str, ItemRun],
) -> System:
    system = System(name, config, rule, n)
    for item, run in by_item.items():
        if len(run.samples) < n:
            continue
        greedy = greedy_runs.get(item)
        ctx = Context(greedy=greedy.samples[0] if greedy and greedy.samples else None)
        decision = RULES[rule](run.samples[:n], ctx)
        if decision is not None:
            system.decisions[item] = decision
    return system


def summarise(system: System, sets: Mapping[str, str]) -> dict[str, Any]:
    """Accuracy with its interval, mean samples used, and the same per item set."""
    decisions = system.decisions.values()
    correct = sum(1 for d in decisions if d.correct)
    by_set: dict[str, list[bool]] = {}
    for item, decision in system.decisions.items():
        by_set.setdefault(sets[item], []).append(decision.correct)
    return {
        "config": system.config,
        "rule": system.rule,
        "n": system.n,
        "accuracy": rate(correct, len(system.decisions)),
        "samples_used": statistics.fmean(d.used for d in decisions) if decisions else None,
        "by_set": {name: rate(sum(v), len(v)) for name, v in sorted(by_set.items())},
    }


def abstention(system: System) -> list[dict[str, Any]]:
    """Precision and coverage of the system at each min_agreement threshold."""
    total = len(system.decisions)
    curve = []
    for threshold in THRESHOLDS:
        answered = [d for d in system.decisions.values() if support(d, threshold)]
        right = sum(1 for d in answered if d.correct)
        curve.append(
            {
                "min_agreement": threshold,
                "coverage": rate(len(answered), total),
                "precision": rate(right, len(answered)),
            }
        )
    return curve


def comparisons(systems: list[System], default: str | None, greedy: str | None) -> list[Paired]:
    """Default precise vs greedy first, then every full-N system against both baselines."""
    by_name = {s.name: s for s in systems}
    pairs: list[Paired] = []
    if default in by_name and greedy in by_name:
        pairs.append(compare(default, greedy, by_name[default].right(), by_name[greedy].right()))
    for system in systems:
        for base in (default, greedy):
            if base in by_name and system.name not in (default, greedy):
                pairs.append(compare(system.name, base, system.right(), by_name[base].right()))
    return pairs
