"""The cost of N: ``/v1/precise`` with N samples against one greedy answer, against the same N
samples as one raw chat request (``n=N``: what the vote adds), against N sequential ``n=1``
calls (the naive loop some proxies run), and the same N samples as N concurrent ``n=1`` chat
requests with seeds ``seed + i`` (the shape adaptive mode sends, so that any sample can be
aborted alone; vLLM gives the children of an ``n=N`` request the same seeds).

Every round asks each N with the same base seed, and the three ways of asking alternate within
the round, so drift hits them alike. All runs on one engine: Quorum in-process (default), or
Quorum ``--upstream`` in front of vLLM's own server (``--system quorum-upstream``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from typing import Any

import httpx

from bench.rig.common import CHAT, PRECISE, chat_body, precise_body, setup_from
from bench.rig.measure import Call, Deadline, call, client_for, median, ratio
from bench.rig.report import Report, Table
from bench.rig.systems import running, under_test

PROMPT = "Tom has 17 apples and buys 25 more. How many apples does he have? Think step by step."
TEMPERATURE = 0.7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--samples", default="1,2,4,8,16", help="the N to measure")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--system", choices=["quorum", "quorum-upstream"], default="quorum")
    parser.add_argument("--quorum-url", default=None, help="use this Quorum, do not start one")


async def sequential(client: httpx.AsyncClient, model: str, n: int, args: Any, seed: int) -> Call:
    """N chat calls of one sample each, one after the other, as one timed call."""
    began, tokens, last = time.perf_counter(), 0, None
    for i in range(n):
        body = chat_body(model, PROMPT, args.max_tokens, temperature=TEMPERATURE, seed=seed + i)
        last = await call(client, CHAT, body)
        if not last.ok:
            return last
        tokens += last.completion_tokens
    return Call(200, time.perf_counter() - began, tokens, last.payload if last else None)


async def concurrent(client: httpx.AsyncClient, model: str, n: int, args: Any, seed: int) -> Call:
    """N chat calls of one sample each, all at once, as one timed call."""
    began = time.perf_counter()
    bodies = [
        chat_body(model, PROMPT, args.max_tokens, temperature=TEMPERATURE, seed=seed + i)
        for i in range(n)
    ]
    done = await asyncio.gather(*(call(client, CHAT, body) for body in bodies))
    failed = next((c for c in done if not c.ok), None)
    if failed is not None:
        return failed
    tokens = sum(c.completion_tokens for c in done)
    return Call(200, time.perf_counter() - began, tokens, done[-1].payload)


async def run(args: Any, report: Report) -> None:
    """Measure every N in rounds; tabulate against greedy, raw n=N and the sequential loop."""
    counts = [int(x) for x in args.samples.split(",")]
    if 1 not in counts:
        counts = [1, *counts]  # greedy is the baseline
    deadline = Deadline(args.budget_s)
    cells: dict[tuple[str, int], list[Call]] = defaultdict(list)
    start, quorum = under_test(setup_from(args), args.system, args.quorum_url)
    with running(start):
        client = client_for(quorum)
        model = quorum.model
        try:
            await call(client, PRECISE, precise_body(PROMPT, 2, 4, seed=1))  # warm-up
            for r in range(args.rounds):
                seed = 1000 * (r + 1)
                for n in counts:
                    if deadline.passed():
                        break
                    ways = ["precise", "raw", "sequential", "concurrent"] if n > 1 else ["precise"]
                    for way in ways[r % len(ways) :] + ways[: r % len(ways)]:
                        if way == "precise":
                            body = precise_body(
                                PROMPT, n, args.max_tokens, seed=seed, temperature=TEMPERATURE
                            )
                            done = await call(client, PRECISE, body)
                        elif way == "raw":
                            body = chat_body(
                                model, PROMPT, args.max_tokens, n=n, seed=seed, temperature=0.7
                            )
                            done = await call(client, CHAT, body)
                        elif way == "sequential":
                            done = await sequential(client, model, n, args, seed)
                        else:
                            done = await concurrent(client, model, n, args, seed)
                        cells[way, n].append(done)
        finally:
            await client.aclose()
    table = Table(
        f"Cost of N ({quorum.name}, max_tokens {args.max_tokens}, temperature {TEMPERATURE})",
        [
            "N",
            "precise ms",
            "tokens",
            "x greedy",
            "raw n=N ms",
            "precise / raw",
            "N sequential ms",
            "sequential / precise",
            "N concurrent n=1 ms",
            "concurrent / raw",
        ],
    )
    greedy = median([c.seconds for c in cells["precise", 1] if c.ok])
    for n in counts:
        precise = [c for c in cells["precise", n] if c.ok]
        wall = median([c.seconds for c in precise])
        raw = median([c.seconds for c in cells["raw", n] if c.ok])
        loop = median([c.seconds for c in cells["sequential", n] if c.ok])
        apart = median([c.seconds for c in cells["concurrent", n] if c.ok])
        tokens = median([float(c.completion_tokens) for c in precise])
        table.add(
            n,
            wall * 1000,
            tokens,
            ratio(wall, greedy),
            raw * 1000,
            ratio(wall, raw),
            loop * 1000,
            ratio(loop, wall),
            apart * 1000,
            ratio(apart, raw),
        )
    report.tables = [table]
    report.figures = {"cost_of_n": table.as_dicts()}
    failed = [c for cell in cells.values() for c in cell if not c.ok]
    if failed:
        report.failures.append(f"{len(failed)} requests failed: {failed[0].error}")
    if deadline.hit:
        report.notes.append(f"the {args.budget_s:.0f} s budget ran out: fewer rounds than asked")
