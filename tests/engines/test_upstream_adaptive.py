"""An adaptive vote over the upstream engine: each sample is its own upstream stream, and the
samples cut by the vote have their HTTP streams closed, so the replica stops generating them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from decoding import BetaStopping, ConsistencyPlan, SamplingSpec, TextPrompt, self_consistency
from server.engines.upstream import UpstreamEngine
from server.runtime.settings import Settings

BASE = 40
QUICK = 4  # the samples seeded BASE .. BASE + 3 answer at once
LONG = 1000  # the others generate this many tokens


@dataclass
class Stream:
    """One streamed sample on the fake replica: what it sent and whether the client closed it."""

    seed: int
    sent: int = 0
    finished: bool = False
    closed: bool = False


class Body(httpx.AsyncByteStream):
    """Quick samples say 'The answer is 7' and stop; slow ones say 'step' until closed."""

    def __init__(self, replica: Replica, stream: Stream) -> None:
        self.replica, self.stream = replica, stream

    def _event(self, text: str, reason: str | None) -> bytes:
        choice = {"index": 0, "text": text, "finish_reason": reason, "token_ids": [1]}
        return (
            f"data: {json.dumps({'choices': [choice], 'usage': {'prompt_tokens': 3}})}\n\n".encode()
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.stream.seed - BASE < QUICK:
            words = ["The", " answer", " is", " 7"]
            for i, word in enumerate(words):
                self.stream.sent += 1
                yield self._event(word, "stop" if i == len(words) - 1 else None)
            self.stream.finished = True
            yield b"data: [DONE]\n\n"
            return
        for i in range(LONG):  # a long generation: one token per turn of the loop
            self.stream.sent += 1
            yield self._event(" step", "length" if i == LONG - 1 else None)
            await asyncio.sleep(0)
        self.stream.finished = True
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        self.stream.closed = True


@dataclass
class Replica:
    """Enough of a vLLM completions server for streamed ``n=1`` samples."""

    streams: list[Stream] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/health":
            return httpx.Response(200)
        if path == "/version":
            return httpx.Response(200, json={"version": "0.32.0"})
        if path == "/v1/models":
            card = {"id": "fake", "owned_by": "vllm", "max_model_len": 4096}
            return httpx.Response(200, json={"data": [card]})
        if path == "/tokenize":
            return httpx.Response(200, json={"count": 3, "max_model_len": 4096})
        body = json.loads(request.content)
        self.bodies.append(body)
        stream = Stream(seed=body["seed"])
        self.streams.append(stream)
        return httpx.Response(200, stream=Body(self, stream))


async def test_cut_samples_close_their_upstream_streams(tmp_path: Path) -> None:
    replica = Replica()
    settings = Settings(
        upstreams=["http://127.0.0.1:9100/v1"],
        served_name="quorum-name",
        cache_dir=tmp_path,
        upstream_health_interval_s=3600,
        upstream_start_timeout_s=0,
    )
    engine = UpstreamEngine(settings, transport=httpx.MockTransport(replica.handle))
    await engine.start()
    try:
        spec = SamplingSpec(temperature=0.7, seed=BASE, max_tokens=1000)
        # Beta 0.95 stops on the fourth unanimous answer (31/32): the QUICK samples all vote.
        plan = ConsistencyPlan(samples=8, adaptive=True, stopping=BetaStopping(0.95))
        result = await self_consistency(engine, TextPrompt("6 * 7 ="), spec, plan)
    finally:
        await engine.stop()
    assert sorted((b["n"], b["seed"], b["stream"]) for b in replica.bodies) == [
        (1, BASE + i, True) for i in range(8)
    ]
    assert result.stop_reason == "consensus" and result.answer == "7"
    assert result.samples_used == QUICK
    cut = [s for s in replica.streams if not s.finished]
    assert len(cut) == 8 - QUICK and all(s.closed for s in cut), "every loser's stream closed"
    assert [s.stopped for s in result.samples] == [None] * QUICK + ["consensus"] * (8 - QUICK)
    sent = sum(s.sent for s in cut)
    # What the replica generated for the cut samples is what the vote saw, give or take the
    # chunks in flight: nothing more was generated once their streams were closed.
    seen = sum(s.token_count for s in result.samples if s.stopped == "consensus")
    assert seen <= sent <= seen + 4 * len(cut) < LONG
    assert engine.pool.replicas[0].in_flight == 0
