"""The evaluation harness inside the rig: items and configs asked of one Quorum, then judged.

The harness (``evaluation/``) asks, records and judges: ``evaluation.runner.run`` sends each
(item, config) pair as one ``/v1/precise`` request and appends the answer to a results file, and
``evaluation.report.load_runs`` re-judges every sample from its text. Around it the rig adds what
a comparison of costs needs: Quorum started on loopback (or ``--quorum-url``), one request at a
time so that wall times compare, each item's configs in a rotated order so that drift hits them
alike, no item started once ``--budget-s`` has passed, and the figures taken over the items that
every config answered. The results file and the harness's own report (every vote rule at every
N, plots) stay in the run's logs folder.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.rig.common import PRECISE, precise_body, setup_from
from bench.rig.measure import Deadline, call, client_for, rotated
from bench.rig.report import Report
from bench.rig.systems import running, under_test
from evaluation.analysis import Runs
from evaluation.configs import DEFAULT_MAX_TOKENS, RunConfig
from evaluation.items.store import Item, interleave, load_items
from evaluation.report import load_runs, shared_items, write_report
from evaluation.results import ResultsFile, read_records
from evaluation.runner import run as ask_pairs
from evaluation.targets import wait_ready

RESULTS = "results.jsonl"
HARNESS_REPORT = "eval-report"
READY_TIMEOUT_S = 60.0  # a --quorum-url server still starting gets this long to say /ready
WARM_UP = "Say hello."


def add_item_options(parser: argparse.ArgumentParser, *, limit: int) -> None:
    """Which items (sets, split, how many), tokens per sample, and which Quorum to ask."""
    parser.add_argument("--sets", default=None, help="item sets, comma-separated (default: all)")
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument(
        "--limit",
        type=int,
        default=limit,
        help=f"at most N items, round-robin over the sets (default {limit})",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help=f"per sample (default {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument("--quorum-url", default=None, help="use this Quorum, do not start one")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="append to this results file, skipping the pairs it already answers, so that a run "
        "stopped by its budget goes on where it stopped (default: a new file in the run's logs)",
    )


def chosen_items(args: Any) -> list[Item]:
    """The items ``--sets``, ``--split`` and ``--limit`` select, round-robin over the sets."""
    split = None if args.split == "all" else args.split
    sets = args.sets.split(",") if args.sets else None
    try:
        return interleave(load_items(sets=sets, split=split), args.limit)
    except ValueError as exc:  # an unknown set: the user's to fix, no traceback
        raise SystemExit(f"bench.rig: {exc}") from exc


def run_config(name: str, **fields: Any) -> RunConfig:
    """A harness config from the options; a value it refuses ends the run without a traceback."""
    try:
        return RunConfig(name, **fields)
    except ValueError as exc:
        raise SystemExit(f"bench.rig: {exc}") from exc


@dataclass
class Asked:
    """What asking did: items planned, started and found already answered (``--results``),
    requests that failed, the budget."""

    planned: int
    started: int = 0
    already: int = 0
    failed: int = 0
    out_of_time: bool = False


async def ask_items(
    client: httpx.AsyncClient,
    items: Sequence[Item],
    configs: Sequence[RunConfig],
    results_path: Path,
    deadline: Deadline,
) -> Asked:
    """Every config on every item through the harness, one request at a time, the configs in a
    rotated order for each item; no item starts once the deadline has passed."""
    asked = Asked(len(items))
    with ResultsFile(results_path) as results:
        for index, item in enumerate(items):
            if deadline.passed():
                asked.out_of_time = True
                break
            order = rotated(configs, index)
            done = await ask_pairs(client, [item], order, results, concurrency=1, progress=False)
            if done.skipped == done.planned:
                asked.already += 1
                continue
            asked.started += 1
            asked.failed += done.failed
            print(
                f"[rig] item {index + 1}/{len(items)} {item.id}: {done.failed} failed", flush=True
            )
    return asked


def first_error(results_path: Path) -> str | None:
    """The first failed request's error, as the results file recorded it."""
    errors = (r["error"] for r in read_records(results_path) if r.get("error") is not None)
    error = next(errors, None)
    return None if error is None else str(error)[:300]


def judged(results_path: Path, configs: Sequence[str]) -> Runs:
    """The configs' runs re-judged, on the items every config answered (blocking: the judge
    runs an event loop of its own, so call it from a thread)."""
    # decoding parses formulas with math-verify's alarms off; math-verify warns at each one
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    runs, _ = load_runs([results_path])
    return shared_items({name: runs.get(name, {}) for name in configs})


def harness_report(results_path: Path) -> Path:
    """The harness's own report of the results, next to them (blocking, like ``judged``)."""
    out = results_path.parent / HARNESS_REPORT
    command = ["quorum", "eval", "report", str(results_path), "--out", str(out), "--shared"]
    write_report([results_path], out, command=command, shared=True)
    return out / "report.md"


async def evaluate(args: Any, configs: Sequence[RunConfig], report: Report) -> Runs:
    """Ask Quorum every config on the chosen items, judge the answers, and note what the
    report needs to be read right (failures, the budget, where the results are)."""
    items = chosen_items(args)
    setup = setup_from(args)
    results_path = args.results or setup.run_dir / RESULTS
    start, quorum = under_test(setup, "quorum", args.quorum_url)
    with running(start):
        async with client_for(quorum) as client:
            await wait_ready(client, READY_TIMEOUT_S)
            await call(client, PRECISE, precise_body(WARM_UP, 2, 4, seed=1))  # not recorded
            asked = await ask_items(client, items, configs, results_path, Deadline(args.budget_s))
    report.figures["results"] = str(results_path)
    report.figures["items"] = {
        "planned": asked.planned,
        "started": asked.started,
        "answered before": asked.already,
    }
    if asked.failed:
        report.failures.append(
            f"{asked.failed} requests failed, the first: {first_error(results_path)}"
        )
    if asked.out_of_time:
        report.notes.append(
            f"the {args.budget_s:.0f} s budget ran out: {asked.started + asked.already} of "
            f"{asked.planned} items ({asked.already} answered before, in {results_path}); "
            "run again with the same --results to go on"
        )
    runs = await asyncio.to_thread(judged, results_path, [c.name for c in configs])
    if not next(iter(runs.values()), None):
        report.failures.append("no item was answered by every config")
        return {}
    analysis = await asyncio.to_thread(harness_report, results_path)
    report.notes.append(f"results: {results_path}; the harness's report: {analysis}")
    return runs
