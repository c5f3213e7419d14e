"""``quorum eval report``: one JSON, a Markdown table and PNG plots from results files, offline.

The JSON (``report.json``) records the exact command, date, git commit, the server receipts
seen, per-config costs (wall time, tokens), every system's accuracy with its Wilson interval
(overall and per item set), abstention curves, and exact McNemar comparisons, default precise
(``majority`` at full N) vs greedy named first.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluation.analysis import (
    Runs,
    abstention,
    build_systems,
    cap_of,
    comparisons,
    default_config,
    greedy_config,
    rate,
    summarise,
)
from evaluation.judge import ItemRun, judge_record, latest
from evaluation.results import read_records
from evaluation.stats import Paired

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def git_commit() -> str | None:
    """The commit of the evaluation code, if it runs from a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def load_runs(paths: Sequence[Path]) -> tuple[Runs, dict[str, int]]:
    """Re-judged runs by config and item (the last OK record of each pair wins), and errors."""
    records = [record for path in paths for record in read_records(path)]
    ok, failed = latest(records)
    runs: dict[str, dict[str, ItemRun]] = {}
    for (item, config), record in ok.items():
        runs.setdefault(config, {})[item] = judge_record(record)
    errors: dict[str, int] = {}
    for _, config in failed:
        errors[config] = errors.get(config, 0) + 1
    return runs, errors


def config_costs(runs: Mapping[str, ItemRun], errors: int) -> dict[str, Any]:
    """What a config cost per item: wall seconds, completion tokens, truncated samples."""
    walls = sorted(r.wall_s for r in runs.values())
    samples = [s for r in runs.values() for s in r.samples]
    numeric = [s for r in runs.values() if r.kind == "number" for s in r.samples]
    first = next(iter(runs.values()), None)
    return {
        "config": dict(first.config_spec) if first else {},
        "items": len(runs),
        "errors": errors,
        "samples_per_item": cap_of(runs),
        "wall_s": {
            "mean": statistics.fmean(walls) if walls else None,
            "median": statistics.median(walls) if walls else None,
            "max": walls[-1] if walls else None,
            "total": sum(walls),
        },
        "completion_tokens_per_item": statistics.fmean(r.completion_tokens for r in runs.values())
        if runs
        else None,
        "truncated_samples": rate(
            sum(1 for s in samples if s.finish_reason == "length"), len(samples)
        ),
        "unparsed_samples": rate(sum(1 for s in samples if s.strict.key is None), len(samples)),
        # Extracted answers that are not a number on numeric items ("(8 * -7) = 64"): what a
        # better extraction could still win.
        "non_numeric_answers_on_numeric_items": rate(
            sum(1 for s in numeric if s.strict.key and not s.strict.key.startswith("num:")),
            len(numeric),
        ),
    }


def receipts(runs: Runs) -> list[dict[str, Any]]:
    """The distinct server identities the responses reported."""
    seen: dict[str, dict[str, Any]] = {}
    for by_item in runs.values():
        for run in by_item.values():
            info = {
                k: run.receipt.get(k)
                for k in ("model", "engine", "engine_version", "quorum_version")
            }
            seen.setdefault(json.dumps(info, sort_keys=True), info)
    return list(seen.values())


def shared_items(runs: Runs) -> Runs:
    """Only the items every config answered, so each comparison is paired on the same items."""
    common = set.intersection(*(set(by_item) for by_item in runs.values())) if runs else set()
    return {c: {i: r for i, r in by_item.items() if i in common} for c, by_item in runs.items()}


def build_report(
    paths: Sequence[Path], command: Sequence[str], *, shared: bool = False
) -> dict[str, Any]:
    """The whole analysis as one JSON-ready dict (``shared``: on the common items only)."""
    runs, errors = load_runs(paths)
    if shared:
        runs = shared_items(runs)
    sets = {item: run.set for by_item in runs.values() for item, run in by_item.items()}
    systems, notes = build_systems(runs)
    greedy = greedy_config(runs)
    multi = [c for c, r in runs.items() if cap_of(r) > 1]
    chosen = default_config(runs)
    default = None if chosen is None else f"{chosen}/majority@{cap_of(runs[chosen])}"
    pairs = comparisons(systems, default, greedy)
    curves = {
        s.config: abstention(s)
        for s in systems
        if s.rule == "majority" and s.config in multi and s.n == cap_of(runs[s.config])
    }
    return {
        "command": list(command),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "results_files": [str(p) for p in paths],
        "shared_items_only": shared,
        "receipts": receipts(runs),
        "items": {"total": len(sets), "by_set": _count(sets.values())},
        "configs": {c: config_costs(runs.get(c, {}), errors.get(c, 0)) for c in {**runs, **errors}},
        "baselines": {"default_precise": default, "greedy": greedy},
        "systems": {s.name: summarise(s, sets) for s in systems},
        "abstention": curves,
        "comparisons": [_pair(p) for p in pairs],
        "notes": notes,
    }


def _count(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _pair(p: Paired) -> dict[str, Any]:
    return {
        "a": p.a,
        "b": p.b,
        "items": p.items,
        "both_right": p.both,
        "only_a": p.only_a,
        "only_b": p.only_b,
        "both_wrong": p.neither,
        "p_value": p.p_value,
    }


def _pct(entry: Mapping[str, Any]) -> str:
    if entry["rate"] is None:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['rate']:.1%} [{low:.1%}, {high:.1%}] ({entry['k']}/{entry['n']})"


def _headline(name: str, system: Mapping[str, Any], caps: Mapping[str, int]) -> bool:
    """Greedy configs, every rule at full N, majority at every N, adaptive rules."""
    cap = caps.get(system["config"], 1)
    return cap <= 1 or system["n"] == cap or system["rule"] == "majority"


def _headline_comparison(report: Mapping[str, Any]) -> list[str]:
    """One sentence: default precise against greedy on the same items."""
    default, greedy = report["baselines"]["default_precise"], report["baselines"]["greedy"]
    pair = next((p for p in report["comparisons"] if (p["a"], p["b"]) == (default, greedy)), None)
    if pair is None:
        return ["Default precise vs greedy: needs a greedy and a multi-sample config."]
    n = pair["items"]
    right_a, right_b = pair["both_right"] + pair["only_a"], pair["both_right"] + pair["only_b"]
    return [
        f"**Default precise ({default}) vs greedy ({greedy})** on {n} shared items: "
        f"{right_a}/{n} vs {right_b}/{n} right; {pair['only_a']} only by the vote, "
        f"{pair['only_b']} only by greedy; exact McNemar p = {pair['p_value']:.3g}."
    ]


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(report: Mapping[str, Any]) -> str:
    """A short human summary: costs, the main systems, the baseline comparisons, notes."""
    lines = [f"# quorum eval report ({report['date']})", "", f"`{' '.join(report['command'])}`", ""]
    lines += [
        "| config | items | errors | wall s/item (mean, median) | tokens/item |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, cost in report["configs"].items():
        wall = cost["wall_s"]
        lines.append(
            f"| {name} | {cost['items']} | {cost['errors']} | {_num(wall['mean'], '.1f')}, "
            f"{_num(wall['median'], '.1f')} | {_num(cost['completion_tokens_per_item'], '.0f')} |"
        )
    caps = {name: cost["samples_per_item"] for name, cost in report["configs"].items()}
    lines += ["", *_headline_comparison(report)]
    lines += ["", "| system | accuracy [95% CI] | samples used |", "| --- | --- | --- |"]
    shown = {n for n, s in report["systems"].items() if _headline(n, s, caps)}
    for name, system in report["systems"].items():
        if name in shown:
            used = _num(system["samples_used"], ".1f")
            lines.append(f"| {name} | {_pct(system['accuracy'])} | {used} |")
    lines += [
        "",
        "| a | b | items | only a | only b | McNemar p |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for pair in report["comparisons"]:
        system = report["systems"][pair["a"]]
        if pair["a"] in shown and (
            system["n"] == caps.get(system["config"]) or caps.get(system["config"], 1) <= 1
        ):
            lines.append(
                f"| {pair['a']} | {pair['b']} | {pair['items']} | {pair['only_a']} | "
                f"{pair['only_b']} | {pair['p_value']:.3g} |"
            )
    if report["notes"]:
        lines += ["", *(f"- {note}" for note in report["notes"])]
    return "\n".join(lines) + "\n"


def write_report(
    paths: Sequence[Path], out: Path, *, command: Sequence[str], shared: bool = False
) -> str:
    """Write report.json, report.md and the plots into ``out``; return the Markdown."""
    from evaluation.plots import write_plots

    out.mkdir(parents=True, exist_ok=True)
    report = build_report(paths, command, shared=shared)
    report["plots"] = write_plots(report, out)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / REPORT_MD).write_text(text)
    return text
