"""The rig's command line: one subcommand per scenario, each a module with two functions.

A scenario module has ``add_arguments(parser)`` and ``async run(args, report)``; adding one is a
line in ``SCENARIOS``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
from collections.abc import Sequence
from types import FrameType, ModuleType

from bench.rig.common import add_common
from bench.rig.report import Report, context
from bench.rig.systems import stop_all

# name -> (module under bench.rig, one line for --help)
SCENARIOS: dict[str, tuple[str, str]] = {
    "overhead": ("overhead", "gateway overhead: latency and throughput against vLLM's server"),
    "cost-of-n": ("cost_of_n", "precise mode's cost for 1-16 samples, against greedy and a loop"),
    "optillm": ("optillm", "precise mode against optillm's majority voting on eval items"),
    "determinism": ("determinism", "identical temperature-0 requests under load: distinct outputs"),
    "vote-cost": ("vote_cost", "judging cost of a vote (runs bench/judging.py)"),
    "frontend-cpu": ("frontend", "front-end and engine CPU per token, with an optional profile"),
    "adaptive": ("adaptive", "adaptive precise mode against a fixed vote of N, on eval items"),
    "evaluation": ("accuracy", "accuracy against cost on eval items: greedy against a vote of N"),
    "conformance": ("conformance", "OpenAI drop-in conformance: 14 checks against each system"),
}


def scenario_module(name: str) -> ModuleType:
    """The module implementing a scenario."""
    return importlib.import_module(f"bench.rig.{SCENARIOS[name][0]}")


def parser() -> argparse.ArgumentParser:
    """The rig's parser: a subcommand per scenario with its own and the common options."""
    top = argparse.ArgumentParser(
        prog="python -m bench.rig",
        description="Benchmarks that start what they need on loopback, measure side by side, "
        "and print ratios (bench/README.md).",
    )
    commands = top.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    for name, (_, summary) in SCENARIOS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        add_common(sub)
        scenario_module(name).add_arguments(sub)
    return top


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends a run as Ctrl-C does: what it started is stopped."""
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Run one scenario; print its tables and save them with ``--json``."""
    args = parser().parse_args(argv)
    report = Report(args.scenario, context(argv))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(scenario_module(args.scenario).run(args, report))
    except KeyboardInterrupt:
        print("[rig] interrupted: stopping the servers it started", flush=True)
        return 130
    finally:
        stop_all()
    report.print()
    if args.json is not None:
        report.save(args.json)
    return 0 if not report.failed else 1
