"""Adaptive precise mode against a fixed vote of N and the old sequential rounds, same seeds.

Every item of the harness (dev split by default, ``--limit`` 40 round-robin over the sets) is
asked, one request at a time, with the same seed (1000: sample i is seeded 1000 + i in every
config):

- ``nN-t0.7``: a fixed vote of ``--samples`` (16) at temperature 0.7, one engine request;
- ``adaptive``: ``adaptive: true``, the same cap, every sample started at once, each judged as
  it finishes, the rest aborted once the server's stopping rule (``esc``, the last 3 finished
  agree) settles the vote (``decoding.self_consistency``);
- ``adaptive-prune`` (``--prune``): the same with DeepConf pruning in flight.

The old sequential rounds are replayed on the fixed vote's own samples (``bench.rig.replay``:
exact tokens and answers, wall time estimated in their favour). Tokens and wall time are ratios
to the fixed vote over the items every config answered; accuracy is the server's answer's.
``bench/adaptive.py --replay RESULTS`` replays adaptive and the rounds on any recorded fixed
votes without an engine.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from bench.rig.costs import measured, tabulate
from bench.rig.harness import add_item_options, evaluate, run_config
from bench.rig.replay import rounds_cost
from bench.rig.report import Report
from evaluation.configs import RunConfig

TEMPERATURE = 0.7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    add_item_options(parser, limit=40)
    parser.add_argument(
        "--samples", type=int, default=16, help="the cap, and the fixed vote's N (default 16)"
    )
    parser.add_argument("--prune", action="store_true", help="also adaptive with pruning")


def configs(args: Any) -> list[RunConfig]:
    """The fixed vote first (the baseline), then adaptive, then adaptive with pruning."""
    if args.samples < 2:
        raise SystemExit("bench.rig adaptive: --samples must be at least 2")
    name = f"n{args.samples}-t{TEMPERATURE:g}"
    fixed = run_config(
        name, samples=args.samples, temperature=TEMPERATURE, max_tokens=args.max_tokens
    )
    chosen = [fixed, replace(fixed, name="adaptive", extra={"adaptive": True})]
    if args.prune:
        chosen.append(
            replace(fixed, name="adaptive-prune", extra={"adaptive": True, "prune": True})
        )
    return chosen


async def run(args: Any, report: Report) -> None:
    """Ask the configs item by item, replay the old rounds, tabulate against the fixed vote."""
    chosen = configs(args)
    runs = await evaluate(args, chosen, report)
    if not runs:
        return
    costs = [measured(c.name, runs[c.name]) for c in chosen]
    fixed = runs[chosen[0].name]
    costs.append(
        rounds_cost("sequential rounds (replayed, wall estimated)", fixed, lambda r: r.wall_s)
    )
    title = (
        f"Adaptive against a fixed vote of {args.samples} ({args.sets or 'all sets'}, "
        f"{args.split}, max_tokens {args.max_tokens}; wall in s, ratios to {chosen[0].name})"
    )
    tabulate(report, title, costs)
