"""Where requests go: a running Quorum server, or the real app in this process.

Both are an ``httpx.AsyncClient``, so the in-process run takes the same HTTP code path (routes,
validation, middleware) as a remote one, through ``httpx.ASGITransport``. The only imports of
``server`` live in ``vllm_app`` (in-process) and in the tests' scripted app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

IN_PROCESS_URL = "http://quorum.in-process"


def vllm_app(model: Path | None, **settings: Any) -> Any:
    """The real app on the in-process vLLM engine (the embedded model unless ``model``)."""
    from server.api.app import create_app
    from server.engines.factory import model_folder
    from server.engines.vllm_engine import VllmEngine
    from server.runtime.settings import Settings

    config = Settings(model=None if model is None else str(model), **settings)
    return create_app(config, VllmEngine(config, model_folder(config)))


@asynccontextmanager
async def app_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an ASGI app, its lifespan (engine start and stop) running around the use."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=IN_PROCESS_URL) as client:
            yield client


@asynccontextmanager
async def remote_client(
    url: str, api_key: str | None, *, ready_timeout_s: float = 0.0
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a running server, after its ``/ready`` said 200 (waiting up to the timeout)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=None)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as client:
        await wait_ready(client, ready_timeout_s)
        yield client


async def wait_ready(client: httpx.AsyncClient, timeout_s: float) -> None:
    """Poll ``/ready`` until 200; raise with the last reason once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            reply = await client.get("/ready", timeout=10.0)
            if reply.status_code == 200:
                return
            reason = f"/ready answered {reply.status_code}"
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise ConnectionError(f"server at {client.base_url} is not ready: {reason}")
        await asyncio.sleep(1.0)
