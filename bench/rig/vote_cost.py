"""Vote cost: the judging helper's own benchmark (``bench/judging.py``), run from the rig.

That script measures an ordinary vote's judging time and the event loop's lag side by side
(bench/README.md, "Judging cost"); the rig runs it as it is rather than keeping a second one,
and records its output.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bench.rig.report import Report, Table

SCRIPT = Path(__file__).resolve().parents[1] / "judging.py"
COLUMNS = ["code", "vote p50 ms", "vote p99 ms", "loop lag p50 ms", "loop lag p99 ms", "lag max ms"]


def judging_table(output: str) -> Table:
    """bench/judging.py's rows ("before"/"after" and five figures) as a rig table."""
    table = Table("Judging a 64-sample vote, and the event loop's lag meanwhile", COLUMNS)
    for line in output.splitlines():
        words = line.split()
        if len(words) == len(COLUMNS) and words[0] in ("before", "after"):
            try:
                table.add(words[0], *(float(w) for w in words[1:]))
            except ValueError:
                continue
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options: what to pass to bench/judging.py."""
    parser.add_argument("--votes", type=int, default=200, help="votes to time")
    parser.add_argument(
        "--judging-arg", action="append", default=[], help="more flags for bench/judging.py"
    )


async def run(args: Any, report: Report) -> None:
    """Run bench/judging.py with a time bound, keep its output."""
    if not SCRIPT.exists():
        report.notes.append(f"{SCRIPT.name} is not in this tree yet: nothing to run")
        return
    command = [sys.executable, str(SCRIPT), "--votes", str(args.votes), *args.judging_arg]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=SCRIPT.parents[1],
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), args.budget_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        report.failures.append(f"{SCRIPT.name} took longer than {args.budget_s:.0f} s")
        return
    text = output.decode(errors="replace")
    print(text)
    report.figures = {"output": text, "exit_code": process.returncode}
    report.tables.append(judging_table(text))
    if process.returncode != 0:
        report.failures.append(f"{SCRIPT.name} exited {process.returncode}")
