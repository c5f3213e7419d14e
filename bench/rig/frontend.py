"""Front-end CPU per token: where a gateway's per-token cost goes, measured without wall clocks.

On a machine with few cores, vLLM's CPU engine runs OpenMP threads on every core; whatever CPU
the serving process (HTTP, detokenizing, the event loop) spends during decoding is taken from
those threads, so a per-token difference in wall time between two servers on the same engine
is, to first order, a difference in their front ends' CPU per token. This scenario starts each
system in turn (one engine at a time), sends the same bursts of concurrent chats, and reads the
CPU time of the front-end process (the server's own process: Quorum, or vLLM's API server) and
of the rest of its process group (the engine core and its workers) from ``/proc``, before and
after, with the completion tokens served. CPU time, unlike wall time, is not inflated by the
neighbours' load. ``--py-spy PATH`` also samples the front end with py-spy during the bursts
and prints the functions it was in most (self time), to say what costs the time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from bench.rig.common import CHAT, chat_body, setup_from
from bench.rig.measure import Burst, Deadline, burst, call, client_for, ratio
from bench.rig.report import Report, Table
from bench.rig.systems import System, running, under_test

PROMPT = "Write a long story about a lighthouse keeper and the sea."
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--systems", default="vllm,quorum", help="measured one after the other")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--bursts", type=int, default=3, help="bursts per system")
    parser.add_argument("--per-client", type=int, default=2, help="requests per client")
    parser.add_argument("--py-spy", type=Path, default=None, help="py-spy binary: profile too")
    parser.add_argument("--top", type=int, default=15, help="functions to list per profile")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime: fields 14 and 15


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of every live process of a group (the engine core and its workers)."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.getpgid(int(name)) == pgid:
                total += cpu_seconds(int(name))
        except (OSError, IndexError):
            continue
    return total


def leaf_functions(collapsed: str, top: int) -> list[tuple[str, float]]:
    """From py-spy's collapsed stacks ("a;b;c 12" per line): the innermost frames with the
    largest share of samples (self time), as (frame, share)."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[stack.rsplit(";", 1)[-1]] += int(count)
    total = sum(counts.values()) or 1
    return [(frame, n / total) for frame, n in counts.most_common(top)]


async def measure(system: System, args: Any, profile: Path | None) -> dict[str, Any]:
    """Warm up, then the bursts, with the front end's and the group's CPU read around them."""
    assert system.process is not None and system.process.process is not None
    pid = system.process.process.pid
    async with client_for(system, args.clients + 4) as client:
        await call(client, CHAT, chat_body(system.model, PROMPT, 4))
        spy = None
        if profile is not None:
            spy = await asyncio.create_subprocess_exec(
                str(args.py_spy), "record", "--pid", str(pid), "--format", "raw", "--rate",
                "200", "--nonblocking", "--output", str(profile),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        front, group = cpu_seconds(pid), group_cpu_seconds(pid)
        bursts: list[Burst] = []
        for _ in range(args.bursts):
            body = chat_body(system.model, PROMPT, args.max_tokens)
            bursts.append(
                await burst(client, CHAT, body, clients=args.clients, per_client=args.per_client)
            )
        front, group = cpu_seconds(pid) - front, group_cpu_seconds(pid) - group
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            await asyncio.wait_for(spy.wait(), 30)
    calls = [c for b in bursts for c in b.calls]
    tokens = sum(c.completion_tokens for c in calls if c.ok)
    wall = sum(b.seconds for b in bursts)
    return {
        "tokens": tokens,
        "errors": sum(1 for c in calls if not c.ok),
        "tokens_per_s": tokens / wall if wall else 0.0,
        "front_ms_per_token": 1000 * front / tokens if tokens else float("nan"),
        "engine_ms_per_token": 1000 * (group - front) / tokens if tokens else float("nan"),
    }


async def run(args: Any, report: Report) -> None:
    """Each system alone: CPU per token of its front end and its engine, and a profile."""
    setup = setup_from(args)
    deadline = Deadline(args.budget_s)
    results: dict[str, dict[str, Any]] = {}
    for name in [s for s in args.systems.split(",") if s]:
        if deadline.passed():
            break
        start, target = under_test(setup, name, None)
        profile = setup.run_dir / f"{name}.pyspy.txt" if args.py_spy else None
        with running(start):
            results[name] = await measure(target, args, profile)
        if profile is not None and profile.exists():
            top = leaf_functions(profile.read_text(), args.top)
            table = Table(f"py-spy: {name}'s front end, self time", ["function", "share"])
            for frame, share in top:
                table.add(frame, share)
            report.tables.append(table)
            results[name]["profile"] = str(profile)
    base = results.get("vllm", {})
    table = Table(
        f"CPU per completion token ({args.clients} clients, {args.max_tokens}-token chats)",
        ["system", "tokens", "errors", "tokens/s", "front ms/token", "engine ms/token",
         "front x vllm"],
    )  # fmt: skip
    for name, cell in results.items():
        table.add(
            name, cell["tokens"], cell["errors"], cell["tokens_per_s"],
            cell["front_ms_per_token"], cell["engine_ms_per_token"],
            ratio(cell["front_ms_per_token"], base.get("front_ms_per_token", float("nan"))),
        )  # fmt: skip
    report.tables.insert(0, table)
    report.figures = {"systems": results}
    report.notes.append(f"logs and profiles: {setup.run_dir}")
    if errors := sum(cell["errors"] for cell in results.values()):
        report.failures.append(f"{errors} requests failed")
