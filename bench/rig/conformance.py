"""OpenAI drop-in conformance: the fourteen checks of ``bench.rig.conformance_checks`` against
vLLM's own server, Quorum in-process, Quorum ``--upstream`` in front of that vLLM server, and,
with ``--optillm``, optillm in front of it too.

optillm is asked for its plain pass-through (its ``none`` approach: the model named without an
approach prefix, which it forwards to vLLM's server as it is), so what is checked is what it
does to a request it does not optimise. Never two engines at once: vLLM's server with what
stands in front of it first, then Quorum in-process. A check passes or fails; the table has a
column per system and a total per system, and every failure's reason follows it.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import httpx
import openai

from bench.rig import systems
from bench.rig.common import served_name, setup_from
from bench.rig.conformance_checks import CHECKS
from bench.rig.conformance_kit import CHECK_TIMEOUT_S, Check, Outcome, Target, run_checks
from bench.rig.measure import Deadline
from bench.rig.optillm import optillm_command
from bench.rig.report import Report, Table

SYSTEMS = ("vllm", "quorum", "quorum-upstream", "optillm")
OPTILLM_APPROACH = "none (pass-through: the model named without an approach prefix)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument(
        "--systems",
        default=None,
        help="comma-separated, of vllm, quorum, quorum-upstream, optillm (default: the first "
        "three, and optillm when --optillm is given)",
    )
    parser.add_argument(
        "--optillm", default=None, help="optillm's command: also check optillm in front of vLLM"
    )
    parser.add_argument("--vllm-url", default=None, help="use this vLLM server, do not start one")
    parser.add_argument("--quorum-url", default=None, help="use this in-process Quorum")
    parser.add_argument("--check-timeout-s", type=float, default=CHECK_TIMEOUT_S)


def wanted(args: Any) -> list[str]:
    """The systems to check, in the table's order."""
    names = args.systems.split(",") if args.systems else list(SYSTEMS[:3])
    if args.systems is None and args.optillm:
        names.append("optillm")
    names = [name for name in names if name]
    if unknown := set(names) - set(SYSTEMS):
        raise SystemExit(f"unknown systems {sorted(unknown)}; known: {SYSTEMS}")
    return [name for name in SYSTEMS if name in names]


def groups(args: Any, names: list[str]) -> list[list[systems.System]]:
    """What to start together, in order: vLLM's server with what stands in front of it, then
    Quorum in-process. A system given by URL is only asked: no model is prepared for it."""
    model = served_name(args)

    @cache
    def setup() -> systems.Setup:
        return setup_from(args)

    found: list[list[systems.System]] = []
    if front := [name for name in names if name != "quorum"]:
        given = args.vllm_url
        vllm = systems.attached("vllm", given, model) if given else systems.vllm_server(setup())
        group = [vllm]
        if "quorum-upstream" in front:
            group.append(systems.quorum_server(setup(), upstream=vllm))
        if "optillm" in front:
            group.append(systems.optillm_server(setup(), optillm_command(args), vllm))
        found.append(group)
    if "quorum" in names:
        given = args.quorum_url
        found.append(
            [systems.attached("quorum", given, model) if given else systems.quorum_server(setup())]
        )
    return found


@asynccontextmanager
async def target_for(system: systems.System, timeout_s: float) -> AsyncIterator[Target]:
    """Raw HTTP and the official client (with its own connections), both on the system."""
    base = system.base_url
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout_s) as http,
        openai.AsyncOpenAI(
            api_key="unused", base_url=f"{base}/v1", max_retries=0, timeout=timeout_s
        ) as client,
    ):
        yield Target(http, client, system.model)


def tabulate(checks: list[Check], results: dict[str, list[Outcome]]) -> Table:
    """Checks as rows, systems as columns, and each system's total."""
    table = Table(f"OpenAI conformance ({len(checks)} checks)", ["check", *results])
    for number, check in enumerate(checks, 1):
        cells = [_cell(outcomes, check.key) for outcomes in results.values()]
        table.add(f"{number}. {check.title}", *cells)
    totals = [sum(o.passed for o in outcomes) for outcomes in results.values()]
    table.add("passed", *(f"{total}/{len(checks)}" for total in totals))
    return table


def _cell(outcomes: list[Outcome], key: str) -> str:
    return "pass" if any(o.passed for o in outcomes if o.key == key) else "fail"


def reasons(checks: list[Check], results: dict[str, list[Outcome]]) -> list[str]:
    """One line per failure: which system, which check, why."""
    numbers = {check.key: number for number, check in enumerate(checks, 1)}
    return [
        f"{name} failed {numbers[o.key]} ({o.key}): {o.reason}"
        for name, outcomes in results.items()
        for o in outcomes
        if not o.passed
    ]


async def run(args: Any, report: Report) -> None:
    """Start each group, run every check against each of its systems in turn, stop it."""
    names = wanted(args)
    deadline = Deadline(args.budget_s)
    results: dict[str, list[Outcome]] = {}
    planned = groups(args, names)
    for group in planned:
        if deadline.passed():
            break
        with systems.running(group) as started:
            for system in started:
                if system.name in names:
                    async with target_for(system, args.check_timeout_s) as target:
                        results[system.name] = await run_checks(
                            target, CHECKS, args.check_timeout_s
                        )
    results = {name: results[name] for name in names if name in results}
    report.tables = [tabulate(CHECKS, results)]
    report.notes += reasons(CHECKS, results)
    if "optillm" in results:
        report.notes.append(f"optillm ran its approach {OPTILLM_APPROACH}")
    report.figures = {
        "checks": [{"key": c.key, "title": c.title} for c in CHECKS],
        "systems": {
            name: {
                "passed": sum(o.passed for o in outcomes),
                "outcomes": {o.key: {"passed": o.passed, "reason": o.reason} for o in outcomes},
            }
            for name, outcomes in results.items()
        },
    }
    logs = {s.process.log_path.parent for g in planned for s in g if s.process}
    report.notes += [f"logs: {folder}" for folder in sorted(logs)]
    if deadline.hit:
        report.notes.append(f"the {args.budget_s:.0f} s budget ran out: systems left unchecked")
