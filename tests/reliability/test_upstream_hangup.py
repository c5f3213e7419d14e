"""A client that hangs up closes every upstream request its work started, as a replica sees it.

Quorum runs in-process on uvicorn (so a streamed body runs inside Starlette's cancel scope, as in
production) over the upstream engine's real HTTP client; the replica is a fake OpenAI server on
loopback that holds each request open until the test says otherwise and records which ones it
saw closed. Adaptive precise mode draws each sample as its own upstream stream: every one must
be closed, whether the client left before the replica answered or while tokens were flowing.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from server.api.app import create_app
from server.engines.upstream import UpstreamEngine
from tests.inprocess import MODEL
from tests.reliability.conftest import make_settings, until

Moment = Literal["before the head", "mid-stream"]
MESSAGES = [{"role": "user", "content": "hi"}]
BODIES: dict[str, tuple[str, dict[str, Any], int]] = {  # asked for; upstream requests made
    "adaptive precise": ("/v1/precise", {"samples": 4, "adaptive": True, "seed": 1}, 4),
    "precise": ("/v1/precise", {"samples": 4, "seed": 1}, 1),
    "chat": ("/v1/chat/completions", {"model": MODEL, "n": 2}, 1),
}


@dataclass
class Replica:
    """Enough of vLLM's OpenAI server: each generation is held open (before its head, or after
    one token per sample) until ``release``, and a client closing it is recorded."""

    answer_at_once: bool
    arrived: int = 0
    flowing: int = 0
    closed: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def started(self, moment: Moment) -> int:
        """Requests sent (before the head), or answering (mid-stream)."""
        return self.arrived if moment == "before the head" else self.flowing

    def app(self) -> Starlette:
        async def health(_: Request) -> Response:
            return Response()

        async def version(_: Request) -> Response:
            return JSONResponse({"version": "0.32.0"})

        async def models(_: Request) -> Response:
            card = {"id": "fake", "owned_by": "vllm", "max_model_len": 512}
            return JSONResponse({"data": [card]})

        routes = [Route("/health", health), Route("/version", version), Route("/v1/models", models)]
        routes.append(Route("/v1/chat/completions", self.generate, methods=["POST"]))
        return Starlette(routes=routes)

    async def generate(self, request: Request) -> Response:
        body = await request.json()
        self.arrived += 1
        if not self.answer_at_once and not await self._held(request):
            self.closed += 1  # like vLLM's ``with_cancellation``: the request is aborted
            return Response(status_code=499)
        return StreamingResponse(self._tokens(body["n"]), media_type="text/event-stream")

    async def _held(self, request: Request) -> bool:
        """Wait for ``release`` (True) or the client leaving (False)."""

        async def left() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        waits = {asyncio.ensure_future(self.release.wait()), asyncio.ensure_future(left())}
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return self.release.is_set()

    async def _tokens(self, n: int) -> AsyncIterator[str]:
        finished = False
        try:
            for reason in (None, "stop"):
                if reason is not None:
                    await self.release.wait()
                for index in range(n):
                    choice = {"index": index, "delta": {"content": "x"}, "finish_reason": reason}
                    yield f"data: {json.dumps({'choices': [choice]})}\n\n"
                self.flowing += reason is None
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            self.closed += not finished  # the client closed the stream: vLLM aborts it


@asynccontextmanager
async def on_loopback(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a loopback port of its own; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or serving.done())
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def hang_up(url: str, body: dict[str, Any]) -> None:
    """A client that reads the stream until cancelled: then its connection closes."""
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("POST", url, json=body) as response,
    ):
        async for _ in response.aiter_lines():
            pass


@pytest.mark.parametrize("moment", ["before the head", "mid-stream"])
@pytest.mark.parametrize("asked", list(BODIES))
async def test_a_client_hang_up_closes_every_upstream_request(
    tmp_cache: Path, asked: str, moment: Moment
) -> None:
    path, extra, requests = BODIES[asked]
    replica = Replica(answer_at_once=moment == "mid-stream")
    async with on_loopback(replica.app()) as upstream:
        settings = make_settings(
            tmp_cache,
            upstreams=[f"{upstream}/v1"],
            upstream_tokenize=False,
            upstream_health_interval_s=3600,
        )
        app = create_app(settings, UpstreamEngine(settings))
        async with app.router.lifespan_context(app), on_loopback(app) as quorum:
            body = {"messages": MESSAGES, "max_tokens": 50, "stream": True, **extra}
            client = asyncio.create_task(hang_up(f"{quorum}{path}", body))
            await until(lambda: replica.started(moment) == requests)
            client.cancel()
            await asyncio.gather(client, return_exceptions=True)
            try:
                await until(lambda: replica.closed == requests)
            finally:
                replica.release.set()  # whatever Quorum left open ends, so the servers stop
            assert replica.arrived == requests, "no request was sent after the client left"
            await until(lambda: app.state.lifecycle.inflight == 0)
