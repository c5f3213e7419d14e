"""Gateway overhead: Quorum (in-process, and ``--upstream``) against vLLM's own OpenAI server.

Latency (p50, p99) of one temperature-0 chat at 1, 32 and 256 tokens, and throughput (completion
tokens per second) of 1, 8 and 32 concurrent clients sending 64-token chats. Within a round each
system gets the same requests, in a rotated order, with a pause whenever the engine changes.
The per-token cost is the slope between the 32- and 256-token medians, which cancels what a
request costs once (HTTP, templating, the first step).

Layouts: ``alternate`` (default) never runs two engines at once: vLLM's server with Quorum
``--upstream`` in front of it, then Quorum in-process, ``--cycles`` times (A B A B), pooled;
``together`` starts all three and interleaves every request (two engines on the same cores:
fairer against drift, but needs the memory of two engines).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

from bench.rig.common import CHAT, chat_body, setup_from
from bench.rig.measure import (
    Burst,
    Call,
    Deadline,
    Switcher,
    burst,
    call,
    client_for,
    median,
    percentile,
    ratio,
    rotated,
)
from bench.rig.report import Cell, Report, Table
from bench.rig.systems import Setup, System, attached, quorum_server, running, vllm_server

PROMPT = "Write a long story about a lighthouse keeper and the sea."
BASELINE = "vllm"
SYSTEMS = ("vllm", "quorum", "quorum-upstream")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--lengths", default="1,32,256", help="max_tokens per latency cell")
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds per cycle")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per burst")
    parser.add_argument("--burst-tokens", type=int, default=64)
    parser.add_argument("--per-client", type=int, default=2, help="requests per client")
    parser.add_argument("--burst-rounds", type=int, default=2, help="throughput rounds per cycle")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--layout", choices=["alternate", "together"], default="alternate")
    parser.add_argument("--cycles", type=int, default=2, help="alternate layout: A B repeats")
    parser.add_argument("--vllm-url", default=None, help="use this vLLM server, do not start one")
    parser.add_argument("--quorum-url", default=None, help="use this in-process Quorum")


class Results:
    """Every call and burst, pooled by system and cell over cycles."""

    def __init__(self) -> None:
        self.latency: dict[tuple[str, int], list[Call]] = defaultdict(list)
        self.bursts: dict[tuple[str, int], list[Burst]] = defaultdict(list)


def groups(args: Any, setup: Setup) -> list[list[System]]:
    """The systems to start together, in the order they run."""
    wanted = [s for s in args.systems.split(",") if s]
    unknown = set(wanted) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; known: {SYSTEMS}")

    def vllm_side() -> list[System]:
        vllm = (
            attached("vllm", args.vllm_url, setup.served_name)
            if args.vllm_url
            else vllm_server(setup)
        )
        if "quorum-upstream" not in wanted:
            return [vllm] if "vllm" in wanted else []
        return [vllm, quorum_server(setup, upstream=vllm)]  # the baseline always runs with it

    def quorum_side() -> list[System]:
        if "quorum" not in wanted:
            return []
        if args.quorum_url:
            return [attached("quorum", args.quorum_url, setup.served_name)]
        return [quorum_server(setup)]

    if args.layout == "together":
        return [[*vllm_side(), *quorum_side()]]
    cycles = []
    for _ in range(max(1, args.cycles)):
        cycles += [vllm_side(), quorum_side()]
    return [group for group in cycles if group]


async def measure_group(
    systems: list[System], args: Any, results: Results, deadline: Deadline
) -> None:
    """Latency rounds, then throughput rounds, interleaved over ``systems``."""
    switcher = Switcher(args.switch_pause)
    lengths = [int(x) for x in args.lengths.split(",")]
    widths = [int(x) for x in args.clients.split(",")]
    clients = {s.name: client_for(s, max(widths) + 4) for s in systems}
    try:
        for system in systems:  # warm-up: connections, the first template, caches
            await switcher.to(system)
            await call(clients[system.name], CHAT, chat_body(system.model, PROMPT, 4))
        for r in range(args.rounds):
            for length in lengths:
                for system in rotated(systems, r):
                    if deadline.passed():
                        return
                    await switcher.to(system)
                    body = chat_body(system.model, PROMPT, length)
                    results.latency[system.name, length].append(
                        await call(clients[system.name], CHAT, body)
                    )
        for r in range(args.burst_rounds):
            for width in widths:
                for system in rotated(systems, r):
                    if deadline.passed():
                        return
                    await switcher.to(system)
                    body = chat_body(system.model, PROMPT, args.burst_tokens)
                    results.bursts[system.name, width].append(
                        await burst(
                            clients[system.name],
                            CHAT,
                            body,
                            clients=width,
                            per_client=args.per_client,
                        )
                    )
    finally:
        for client in clients.values():
            await client.aclose()


def tables(results: Results, args: Any) -> tuple[list[Table], dict[str, Any]]:
    """Latency and throughput tables, ratios against vLLM's own server, per-token slopes."""
    lengths = [int(x) for x in args.lengths.split(",")]
    widths = [int(x) for x in args.clients.split(",")]
    names = sorted({name for name, _ in results.latency} | {name for name, _ in results.bursts})
    names.sort(key=lambda n: SYSTEMS.index(n) if n in SYSTEMS else len(SYSTEMS))
    latency = Table(
        "Latency (one chat, temperature 0)",
        ["system", "max_tokens", "tokens", "n", "errors", "p50 ms", "p99 ms", "p50 x", "p99 x"],
    )
    figures: dict[str, Any] = {"latency": {}, "throughput": {}, "per_token_ms": {}}
    p50s: dict[tuple[str, int], float] = {}
    for length in lengths:
        base = [c.seconds for c in results.latency.get((BASELINE, length), []) if c.ok]
        for name in names:
            calls = results.latency.get((name, length), [])
            good = [c.seconds for c in calls if c.ok]
            tokens = median([float(c.completion_tokens) for c in calls if c.ok])
            p50, p99 = median(good) * 1000, percentile(good, 99) * 1000
            p50s[name, length] = p50
            row: list[Cell] = [name, length, tokens, len(good), len(calls) - len(good), p50, p99]
            row += [ratio(p50, median(base) * 1000), ratio(p99, percentile(base, 99) * 1000)]
            latency.add(*row)
            figures["latency"][f"{name}@{length}"] = dict(zip(latency.columns, row, strict=True))
    slope = Table("Per-token cost (slope between the two longest lengths)", ["system", "ms/token"])
    if len(lengths) >= 2:
        short, long = sorted(lengths)[-2:]
        for name in names:
            per_token = (p50s.get((name, long), 0) - p50s.get((name, short), 0)) / (long - short)
            slope.add(name, per_token)
            figures["per_token_ms"][name] = per_token
    throughput = Table(
        f"Throughput ({args.burst_tokens}-token chats, {args.per_client} per client)",
        ["system", "clients", "tokens/s", "rounds", "errors", "x vllm"],
    )
    for width in widths:
        base_rate = median([b.tokens_per_s for b in results.bursts.get((BASELINE, width), [])])
        for name in names:
            done = results.bursts.get((name, width), [])
            rate = median([b.tokens_per_s for b in done])
            errors = sum(1 for b in done for c in b.calls if not c.ok)
            cells: list[Cell] = [name, width, rate, len(done), errors, ratio(rate, base_rate)]
            throughput.add(*cells)
            figures["throughput"][f"{name}@{width}"] = dict(
                zip(throughput.columns, cells, strict=True)
            )
    return [latency, slope, throughput], figures


async def run(args: Any, report: Report) -> None:
    """Start each group of systems, measure, stop; then tabulate."""
    setup = setup_from(args)
    deadline = Deadline(args.budget_s)
    results = Results()
    for group in groups(args, setup):
        if deadline.passed():
            break
        with running(group) as systems:
            await measure_group(systems, args, results, deadline)
    report.tables, report.figures = tables(results, args)
    calls = [c for cell in results.latency.values() for c in cell]
    calls += [c for cell in results.bursts.values() for b in cell for c in b.calls]
    if failed := [c for c in calls if not c.ok]:
        report.failures.append(f"{len(failed)} of {len(calls)} requests failed: {failed[0].error}")
    report.notes.append(f"logs: {setup.run_dir}")
    if deadline.hit:
        report.notes.append(f"the {args.budget_s:.0f} s budget ran out: fewer rounds than asked")
