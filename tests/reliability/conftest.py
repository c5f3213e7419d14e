"""Reliability tests: the app in-process on a paced scripted engine, and real server processes.

In-process tests drive the app through ``httpx.ASGITransport`` and the official client, or by
hand (``AsgiCall``) where a client must hang up mid-request, which ``ASGITransport`` cannot do.
Process tests start ``quorum serve`` with the hidden test engine (``QUORUM_TEST_ENGINE=scripted``,
no model, ready in about a second) unless they are about the real engine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from server.engines.paced import PacedEngine
from server.engines.scripted import ScriptedEngine
from server.runtime.settings import Settings
from tests import inprocess
from tests.e2e.server_process import ServerProcess
from tests.inprocess import MODEL

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for a scripted server with small, testable caps (precise samples too)."""
    return inprocess.make_settings(tmp, **{"max_samples": 8, **overrides})


def paced(token_delay_s: float = 0.0) -> PacedEngine:
    """A scripted engine that takes ``token_delay_s`` per token and counts open requests."""
    return PacedEngine(inner=ScriptedEngine(max_model_len=512), token_delay_s=token_delay_s)


def words(count: int) -> str:
    """A prompt of ``count`` words: the echo script replies with them, one token each."""
    return " ".join(f"w{i}" for i in range(count))


async def until(condition: Callable[[], bool], within: float = 5.0) -> float:
    """Poll ``condition`` until it holds (a deadline, not a sleep as synchronisation);
    returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


class AsgiCall:
    """One request driven by hand, so the test decides when the client hangs up."""

    def __init__(
        self,
        app: FastAPI,
        path: str,
        body: dict[str, Any],
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.messages: list[MutableMapping[str, Any]] = []
        self._hangup = asyncio.Event()
        self._body = json.dumps(body).encode()
        self._sent = False
        scope = {
            "type": "http",
            # What uvicorn declares: Starlette then watches for the hang-up in a cancel scope
            # that cancels the response body again on every turn of the loop until it ends.
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
            "client": ("127.0.0.1", 1234),
            "server": ("127.0.0.1", 8000),
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._sent:
            self._sent = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._hangup.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)

    @property
    def body_read(self) -> bool:
        """Whether the app asked for the request body."""
        return self._sent

    def hang_up(self) -> None:
        """The client closes the connection."""
        self._hangup.set()

    @property
    def status(self) -> int | None:
        """The response status, once the response started."""
        for message in self.messages:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return None

    @property
    def body(self) -> bytes:
        """Every body byte sent so far."""
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )


@pytest.fixture
def tmp_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder the settings insist on; the scripted engine never uses it."""
    return tmp_path_factory.mktemp("cache")


def scripted_process(
    run_dir: Path, name: str, args: list[str], env: dict[str, str] | None = None
) -> ServerProcess:
    """``quorum serve`` on the paced scripted engine (hidden test setting): real sockets and
    signals, no model."""
    environment = {
        "QUORUM_TEST_ENGINE": "scripted",
        "QUORUM_CACHE_DIR": str(run_dir / "cache"),
        **(env or {}),
    }
    return ServerProcess(
        ["--served-name", MODEL, "--max-model-len", "512", *args],
        run_dir / f"{name}.log",
        env=environment,
    )


@pytest.fixture(scope="session")
def process_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs of the server processes of this session."""
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture
def stop_after() -> Iterator[list[ServerProcess]]:
    """Processes a test started, stopped (SIGTERM, then SIGKILL) if the test did not."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop(timeout=10)
