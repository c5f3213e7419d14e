"""Upstream failures are recorded, never fatal: statuses, bad bodies, refused connections, hangs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from evaluation.configs import RunConfig
from evaluation.items.store import Item
from evaluation.results import ResultsFile, read_records
from evaluation.runner import run

ITEMS = [Item(f"s-{i}", "s", "dev", f"question {i}", "1", "number") for i in range(4)]


async def handler(request: httpx.Request) -> httpx.Response:
    """Item 0 is answered; 1 gets a 500; 2 a body that is not JSON; 3 a refused connection."""
    question = request.content.decode()
    if "question 0" in question:
        return httpx.Response(200, json={"answer": "1", "samples": []})
    if "question 1" in question:
        return httpx.Response(500, json={"error": {"message": "engine died"}})
    if "question 2" in question:
        return httpx.Response(200, text="<html>proxy error</html>")
    raise httpx.ConnectError("connection refused", request=request)


async def test_errors_are_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        with ResultsFile(tmp_path / "r.jsonl") as results:
            summary = await run(client, ITEMS, [RunConfig("g", samples=1)], results, progress=False)
    assert (summary.answered, summary.failed) == (1, 3)
    errors = {r["item"]["id"]: r["error"] for r in read_records(tmp_path / "r.jsonl")}
    assert errors["s-0"] is None
    assert errors["s-1"]["status"] == 500 and "engine died" in errors["s-1"]["body"]
    assert errors["s-2"]["type"] == "JSONDecodeError"
    assert errors["s-3"]["type"] == "ConnectError"


async def test_a_request_past_its_timeout_is_recorded(tmp_path: Path) -> None:
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("unreachable")

    transport = httpx.MockTransport(hang)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        with ResultsFile(tmp_path / "r.jsonl") as results:
            summary = await run(
                client,
                ITEMS[:2],
                [RunConfig("g", samples=1)],
                results,
                timeout_s=0.05,
                progress=False,
                concurrency=2,
            )
    assert (summary.answered, summary.failed) == (0, 2)
    assert all(r["error"]["type"] == "timeout" for r in read_records(tmp_path / "r.jsonl"))


async def test_concurrency_must_be_positive(tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url="http://x") as client:
        with ResultsFile(tmp_path / "r.jsonl") as results, pytest.raises(ValueError):
            await run(client, ITEMS, [RunConfig("g")], results, concurrency=0)
