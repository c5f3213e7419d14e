"""Accuracy against cost on evaluation items: greedy against a vote of N, same items and seeds.

Every item of the harness (dev split by default, ``--limit`` 40 round-robin over the sets) is
asked, one request at a time, as one greedy answer (samples 1, temperature 0) and as a vote of
``--samples`` (8) at ``--temperature`` (0.7), seed 1000 for both. The table gives accuracy (the
server's answer) with its Wilson 95% interval, and completion tokens and wall time as ratios to
greedy, over the items both answered; then the exact McNemar test of the vote against greedy.
The harness's own report (every vote rule at every N the vote's samples allow) is saved with
the results.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from bench.rig.costs import measured, tabulate
from bench.rig.harness import add_item_options, evaluate, run_config
from bench.rig.report import Report
from evaluation.configs import RunConfig, default_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    add_item_options(parser, limit=40)
    parser.add_argument("--samples", type=int, default=8, help="the vote's N (default 8)")
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="the vote's temperature (default 0.7)"
    )


def configs(args: Any) -> list[RunConfig]:
    """Greedy first (the baseline), then the vote."""
    if args.samples < 2:
        raise SystemExit("bench.rig evaluation: --samples must be at least 2 (1 is greedy)")
    greedy = run_config("greedy", samples=1, temperature=0.0, max_tokens=args.max_tokens)
    vote = run_config(
        "vote", samples=args.samples, temperature=args.temperature, max_tokens=args.max_tokens
    )
    return [greedy, replace(vote, name=default_name(vote))]


async def run(args: Any, report: Report) -> None:
    """Ask both configs item by item, then tabulate the vote against greedy."""
    chosen = configs(args)
    runs = await evaluate(args, chosen, report)
    if not runs:
        return
    title = (
        f"Accuracy against cost ({args.sets or 'all sets'}, {args.split}, "
        f"max_tokens {args.max_tokens}; wall in s, ratios to greedy)"
    )
    tabulate(report, title, [measured(c.name, runs[c.name]) for c in chosen])
