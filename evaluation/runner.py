"""``quorum eval run``: every (item, config) pair as one ``POST /v1/precise``, appended as it ends.

Pairs already answered in the results file are skipped (resume); errors (HTTP statuses, timeouts,
refused connections) are recorded and retried by the next run, never fatal. Work is item-major, so
a partial run still pairs every config on the same items; ``concurrency`` requests are in flight
at once and each has a hard timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from tqdm import tqdm

from evaluation.configs import RunConfig, same_config
from evaluation.items.store import Item
from evaluation.results import RECORD_VERSION, Record, ResultsFile

PRECISE_PATH = "/v1/precise"
MAX_ERROR_BODY_CHARS = 2000


@dataclass
class RunSummary:
    """What a run did: pairs planned, skipped as done, answered, and failed."""

    planned: int
    skipped: int
    answered: int
    failed: int
    wall_s: float


def check_configs(results: ResultsFile, configs: Sequence[RunConfig]) -> None:
    """Refuse to mix two different configs under one name in one results file."""
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"config names must be unique, got {names}")
    for config in configs:
        known = results.configs.get(config.name)
        if known is not None and not same_config(known, config):
            raise ValueError(
                f"{results.path} already holds a different config named {config.name!r}: "
                f"{known}; give this one another name=..."
            )


def item_record(item: Item) -> dict[str, Any]:
    """The item as a result line keeps it: all but the question (which is in the request)."""
    record = asdict(item)
    record.pop("question")
    return record


async def ask(client: httpx.AsyncClient, item: Item, config: RunConfig, timeout_s: float) -> Record:
    """One request; the record holds the full response, or the error, and the wall time."""
    body = config.request(item)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    response: Any = None
    error: dict[str, Any] | None = None
    status: int | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reply = await client.post(PRECISE_PATH, json=body)
        status = reply.status_code
        if status == 200:
            response = reply.json()
        else:
            error = {"type": "http", "status": status, "body": reply.text[:MAX_ERROR_BODY_CHARS]}
    except TimeoutError:
        error = {"type": "timeout", "message": f"no answer within {timeout_s:g} s"}
    except (httpx.HTTPError, ValueError) as exc:
        error = {"type": type(exc).__name__, "message": str(exc)[:MAX_ERROR_BODY_CHARS]}
    return {
        "v": RECORD_VERSION,
        "item": item_record(item),
        "config": config.to_dict(),
        "request": body,
        "response": response,
        "error": error,
        "status": status,
        "wall_s": round(time.perf_counter() - clock, 4),
        "started_at": started,
    }


async def run(
    client: httpx.AsyncClient,
    items: Sequence[Item],
    configs: Sequence[RunConfig],
    results: ResultsFile,
    *,
    concurrency: int = 2,
    timeout_s: float = 600.0,
    progress: bool = True,
) -> RunSummary:
    """Ask every pending (item, config) pair, ``concurrency`` at a time, appending each result."""
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    check_configs(results, configs)
    planned = [(item, config) for item in items for config in configs]
    pending = [(i, c) for i, c in planned if (i.id, c.name) not in results.done]
    summary = RunSummary(len(planned), len(planned) - len(pending), 0, 0, 0.0)
    clock = time.perf_counter()
    queue: asyncio.Queue[tuple[Item, RunConfig]] = asyncio.Queue()
    for pair in pending:
        queue.put_nowait(pair)
    bar = tqdm(total=len(pending), unit="req", disable=not progress, dynamic_ncols=True)

    async def worker() -> None:
        while True:
            try:
                item, config = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record = await ask(client, item, config, timeout_s)
            results.append(record)
            if record["error"] is None:
                summary.answered += 1
            else:
                summary.failed += 1
                bar.set_postfix(errors=summary.failed)
            bar.update(1)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(pending))))))
    finally:
        bar.close()
        summary.wall_s = time.perf_counter() - clock
    return summary
