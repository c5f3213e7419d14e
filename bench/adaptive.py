"""Adaptive precise mode against a fixed vote of 16 and the old sequential rounds, same seeds.

    .venv/bin/python bench/adaptive.py [--limit 40] [--out bench-out/adaptive] [--model DIR]
                                       [--prune] [--report-only]

Runs the evaluation harness (``quorum eval run``, in-process vLLM engine, default the embedded
SmolLM2) on the same items with the same seed (1000, so sample i is seeded 1000 + i in every
config), one request at a time so that wall times compare:

- ``n16-t0.7``: a fixed vote of 16 samples (one engine request, n=16);
- ``adaptive``: ``adaptive: true``, 16 samples at most, all started at once, stopped inside the
  batch (``decoding.self_consistency``);
- ``adaptive-prune`` (with ``--prune``): the same with DeepConf pruning in flight.

The old sequential rounds (Adaptive-Consistency's Beta rule over rounds of 2, 2, 4, 8 samples,
each round waiting for its slowest sample) are gone from the server; they are replayed on the
fixed vote's samples, which are the very samples those rounds drew (same seeds): their tokens and
answers are exact, their wall time is estimated as the fixed vote's wall time scaled by the
rounds' critical path (the sum over rounds of the longest sample in the round, over the longest
of all 16), which favours them (it ignores each round's prompt and start-up cost).

Reports completion tokens and wall time as ratios to the fixed vote (over the items every config
answered), and accuracy of the server's answer with 95% Wilson intervals; writes the table to
stdout and ``OUT/summary.json``. The results file is resumable: an interrupted run continues.

``--replay RESULTS`` needs no engine: it replays the adaptive vote (``evaluation.rules.
replay_adaptive``: the live referee's decisions, one token per sample per engine step) and the
old rounds on the fixed votes of 16 in any harness results file, for many more items than a live
run affords; its wall ratio is the engine steps to the last sample's end (exact for the batch's
critical path, blind to per-step cost changing as samples are aborted).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from decoding.stopping import (
    BetaStopping,
    ConsensusStopping,
    Standing,
    StoppingRule,
    WindowStopping,
)
from evaluation.judge import ItemRun, JudgedSample, judge_record
from evaluation.results import read_records
from evaluation.rules import majority_of, replay_adaptive
from evaluation.stats import wilson

FIXED = "n16-t0.7"
ADAPTIVE = "adaptive"
PRUNED = "adaptive-prune"
CONFIGS = {
    FIXED: "vote",
    ADAPTIVE: "samples=16 temperature=0.7 extra.adaptive=true name=adaptive",
    PRUNED: "samples=16 temperature=0.7 extra.adaptive=true extra.prune=true name=adaptive-prune",
}
ROUNDS = (2, 2, 4, 8)  # the old BetaStopping's doubling rounds for 16 samples
# The server's default rule first; the others show what a looser rule would trade (--sweep).
SWEEP: tuple[tuple[str, StoppingRule], ...] = (
    ("beta 0.95", BetaStopping()),
    ("beta 0.9", BetaStopping(0.9)),
    ("beta 0.8", BetaStopping(0.8)),
    ("beta 0.75", BetaStopping(0.75)),
    ("esc 5", WindowStopping()),
    ("esc 3", WindowStopping(3)),
    ("consensus 0.95", ConsensusStopping()),
    ("consensus 0.6", ConsensusStopping(0.6, 3)),
)


def sequential_rounds(samples: Sequence[JudgedSample]) -> tuple[bool, int, float]:
    """The old rounds replayed: (correct, completion tokens, critical path / longest sample)."""
    ordered = sorted(samples, key=lambda s: s.index)
    rule, drawn, path = BetaStopping(), 0, 0
    for size in ROUNDS:
        batch = ordered[drawn : drawn + size]
        drawn += len(batch)
        path += max((s.tokens for s in batch), default=0)
        keys = [s.strict.key for s in ordered[:drawn]]
        if drawn < len(ordered) and rule.should_stop(Standing(keys)):
            break
    used = ordered[:drawn]
    longest = max((s.tokens for s in ordered), default=0) or 1
    return majority_of(used).correct, sum(s.tokens for s in used), path / longest


def _runs(results: Path) -> dict[str, dict[str, ItemRun]]:
    """The last OK run of each (config, item)."""
    found: dict[str, dict[str, ItemRun]] = {}
    for record in read_records(results):
        if record.get("error") is None and record.get("response") is not None:
            run = judge_record(record)
            found.setdefault(run.config, {})[run.item_id] = run
    return found


def _rate(right: int, total: int) -> dict[str, Any]:
    low, high = wilson(right, total)
    return {"accuracy": right / total if total else 0.0, "wilson95": [low, high], "n": total}


def summarise(results: Path, configs: Sequence[str]) -> dict[str, Any]:
    """Ratios to the fixed vote and accuracies over the items every config answered."""
    runs = _runs(results)
    common = sorted(set.intersection(*(set(runs.get(c, {})) for c in configs)))
    if not common:
        raise SystemExit("no item was answered by every config")
    fixed = [runs[FIXED][i] for i in common]
    base_tokens = sum(r.completion_tokens for r in fixed)
    base_wall = sum(r.wall_s for r in fixed)
    rows: dict[str, Any] = {}
    for name in configs:
        chosen = [runs[name][i] for i in common]
        tokens = sum(r.completion_tokens for r in chosen)
        wall = sum(r.wall_s for r in chosen)
        voted = Counter(s.index for r in chosen for s in r.samples if s.finish_reason != "abort")
        rows[name] = {
            "completion_tokens": tokens,
            "tokens_ratio": tokens / base_tokens,
            "wall_s": wall,
            "wall_ratio": wall / base_wall,
            "samples_finished_mean": sum(voted.values()) / len(common),
            **_rate(sum(bool(r.server_answer_correct) for r in chosen), len(common)),
        }
    replayed = [sequential_rounds(r.samples) for r in fixed]
    tokens = sum(t for _, t, _ in replayed)
    wall = sum(r.wall_s * share for r, (_, _, share) in zip(fixed, replayed, strict=True))
    rows["sequential-rounds (replayed)"] = {
        "completion_tokens": tokens,
        "tokens_ratio": tokens / base_tokens,
        "wall_s": wall,
        "wall_ratio": wall / base_wall,
        "wall_estimated": True,
        **_rate(sum(ok for ok, _, _ in replayed), len(common)),
    }
    return {"items": len(common), "results": str(results), "rows": rows}


def replay(results: Path, *, sweep: bool = False, config: str = FIXED) -> dict[str, Any]:
    """Adaptive and the old rounds replayed on the recorded fixed votes (see the docstring)."""
    fixed = sorted(_runs(results).get(config, {}).values(), key=lambda r: r.item_id)
    if not fixed:
        raise SystemExit(f"no {config} runs in {results}")
    base_tokens = sum(sum(s.tokens for s in r.samples) for r in fixed)
    base_steps = sum(max(s.tokens for s in r.samples) for r in fixed)
    right = sum(majority_of(r.samples).correct for r in fixed)
    rows: dict[str, Any] = {
        f"{config} (recorded)": {
            "completion_tokens": base_tokens,
            "tokens_ratio": 1.0,
            "wall_s": base_steps,
            "wall_ratio": 1.0,
            **_rate(right, len(fixed)),
        }
    }
    for name, rule in SWEEP if sweep else SWEEP[:1]:
        live = [replay_adaptive(r.samples, rule) for r in fixed]
        rows[f"adaptive {name} (replayed)"] = {
            "completion_tokens": sum(p.tokens for p in live),
            "tokens_ratio": sum(p.tokens for p in live) / base_tokens,
            "wall_s": sum(p.steps for p in live),
            "wall_ratio": sum(p.steps for p in live) / base_steps,
            **_rate(sum(p.decision.correct for p in live), len(fixed)),
        }
    rounds = [sequential_rounds(r.samples) for r in fixed]
    steps = sum(
        share * max(s.tokens for s in r.samples)
        for r, (_, _, share) in zip(fixed, rounds, strict=True)
    )
    rows["sequential-rounds (replayed)"] = {
        "completion_tokens": sum(t for _, t, _ in rounds),
        "tokens_ratio": sum(t for _, t, _ in rounds) / base_tokens,
        "wall_s": steps,
        "wall_ratio": steps / base_steps,
        **_rate(sum(ok for ok, _, _ in rounds), len(fixed)),
    }
    return {"items": len(fixed), "results": str(results), "rows": rows, "wall_unit": "steps"}


def table(summary: dict[str, Any]) -> str:
    """The summary as a Markdown table."""
    unit = summary.get("wall_unit", "s")
    lines = [
        f"{summary['items']} items; ratios to the fixed vote of 16; wall in {unit}.",
        "",
        "| config | completion tokens | tokens ratio | wall | wall ratio | accuracy (95% Wilson) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["rows"].items():
        low, high = row["wilson95"]
        wall = f"{row['wall_ratio']:.2f}" + (" (est.)" if row.get("wall_estimated") else "")
        lines.append(
            f"| {name} | {row['completion_tokens']} | {row['tokens_ratio']:.2f} | "
            f"{row['wall_s']:.0f} | {wall} | {row['accuracy']:.3f} [{low:.3f}, {high:.3f}] |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the configs through the harness (unless ``--report-only``), then report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="items, round-robin over sets")
    parser.add_argument("--out", type=Path, default=Path("bench-out/adaptive"))
    parser.add_argument("--model", type=Path, help="model folder (default: embedded)")
    parser.add_argument("--prune", action="store_true", help="also run adaptive with pruning")
    parser.add_argument("--report-only", action="store_true", help="report the existing results")
    parser.add_argument("--replay", type=Path, help="replay on a results file; no engine")
    parser.add_argument("--sweep", action="store_true", help="with --replay: more rules")
    options = parser.parse_args(argv)
    if options.replay is not None:
        print(table(replay(options.replay, sweep=options.sweep)))
        return 0
    names = [FIXED, ADAPTIVE] + ([PRUNED] if options.prune else [])
    results = options.out / "results.jsonl"
    if not options.report_only:
        from evaluation.cli import main as eval_main

        options.out.mkdir(parents=True, exist_ok=True)
        args = ["run", "--results", str(results), "--limit", str(options.limit)]
        args += ["--concurrency", "1", "--no-progress"]
        args += [] if options.model is None else ["--model", str(options.model)]
        for name in names:
            args += ["--config", CONFIGS[name]]
        code = eval_main(args)
        if code:
            return code
    summary = summarise(results, names)
    (options.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
