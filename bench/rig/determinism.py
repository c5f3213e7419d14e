"""Determinism under load: identical temperature-0 requests while other traffic runs.

``--probes`` identical greedy precise requests (``samples: 1``; on vLLM's own server, the same
chat at temperature 0) go out ``--concurrency`` at a time, while ``--background`` clients send
mixed chats (random lengths, ``n`` of 1-4, temperature 0.9, varied prompts) to the same engine,
so the probes share batches of changing size and composition. The count of distinct outputs is
the result: 1 means batching never changed a greedy answer. The table also says which mode the
server reports (``determinism`` in ``/v1/models``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter
from typing import Any

import httpx

from bench.rig.common import CHAT, PRECISE, chat_body, message_text, precise_body, setup_from
from bench.rig.measure import Call, Deadline, call, client_for, median, percentile
from bench.rig.report import Report, Table
from bench.rig.systems import running, under_test

PROBE = "Explain in three sentences why the sky is blue."
TOPICS = ("the sea", "a city at night", "prime numbers", "bread", "a mountain", "rain", "chess")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--probes", type=int, default=200, help="identical requests")
    parser.add_argument("--concurrency", type=int, default=4, help="probes in flight")
    parser.add_argument("--background", type=int, default=4, help="clients of other traffic")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--system", choices=["quorum", "quorum-upstream", "vllm"], default="quorum")
    parser.add_argument("--url", default=None, help="use this server, do not start one")


def probe_text(call_: Call, precise: bool) -> str | None:
    """The output that must not change: the precise request's generated sample (its ``text``
    is null when the vote abstains, as it does on a prompt without an answer), or the chat
    message."""
    if not call_.ok or call_.payload is None:
        return None
    if precise:
        samples = call_.payload.get("samples")
        first = samples[0] if isinstance(samples, list) and samples else None
        text = first.get("text") if isinstance(first, dict) else None
        return text if isinstance(text, str) else None
    return message_text(call_.payload)


async def background(client: httpx.AsyncClient, model: str, seed: int, stop: asyncio.Event) -> int:
    """Mixed traffic until ``stop``; the number of requests it sent."""
    rng, sent = random.Random(seed), 0
    while not stop.is_set():
        prompt = f"Write about {rng.choice(TOPICS)}."
        n = rng.choice((1, 1, 2, 4))
        body = chat_body(model, prompt, rng.randint(8, 128), temperature=0.9, n=n, seed=sent)
        await call(client, CHAT, body)
        sent += 1
    return sent


async def served_mode(client: httpx.AsyncClient) -> Any:
    """What ``/v1/models`` says about batch invariance (None where the server says nothing)."""
    try:
        cards = (await client.get("/v1/models")).json().get("data") or [{}]
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return cards[0].get("determinism")


async def run(args: Any, report: Report) -> None:
    """Probes under load; distinct outputs counted."""
    start, target = under_test(setup_from(args), args.system, args.url)
    precise = target.name != "vllm"
    deadline = Deadline(args.budget_s)
    with running(start):
        client = client_for(target, args.concurrency + args.background + 4)
        try:
            mode = await served_mode(client)
            stop = asyncio.Event()
            noise = [
                asyncio.create_task(background(client, target.model, i, stop))
                for i in range(args.background)
            ]
            queue = list(range(args.probes))
            calls: list[Call] = []

            async def prober() -> None:
                while queue and not deadline.passed():
                    queue.pop()
                    if precise:
                        body = precise_body(PROBE, 1, args.max_tokens)
                        calls.append(await call(client, PRECISE, body))
                    else:
                        body = chat_body(target.model, PROBE, args.max_tokens)
                        calls.append(await call(client, CHAT, body))

            await asyncio.gather(*(prober() for _ in range(args.concurrency)))
            stop.set()
            other = sum(await asyncio.gather(*noise))
        finally:
            await client.aclose()
    texts = [probe_text(c, precise) for c in calls]
    distinct = Counter(t for t in texts if t is not None)
    failed = sum(1 for t in texts if t is None)
    seconds = [c.seconds for c in calls if c.ok]
    table = Table(
        "Determinism under load",
        [
            "system",
            "reported mode",
            "probes",
            "failed",
            "distinct outputs",
            "most common",
            "other requests",
            "probe p50 ms",
            "probe p99 ms",
        ],
    )
    common = distinct.most_common(1)[0][1] if distinct else 0
    table.add(
        target.name,
        str(mode),
        len(calls),
        failed,
        len(distinct),
        common,
        other,
        median(seconds) * 1000,
        percentile(seconds, 99) * 1000,
    )
    report.tables = [table]
    report.figures = {
        "distinct": len(distinct),
        "counts": sorted(distinct.values(), reverse=True),
        "probes": len(calls),
        "failed": failed,
        "mode": mode,
    }
    if failed:
        first = next((c.error for c in calls if not c.ok), "an answer without text")
        report.failures.append(f"{failed} probes failed: {first}")
    if deadline.hit:
        report.notes.append(f"the {args.budget_s:.0f} s budget ran out: fewer probes than asked")
