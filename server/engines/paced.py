"""A paced, killable scripted engine, for reliability tests in-process and in real processes.

It wraps ``ScriptedEngine``: each token takes ``token_delay_s`` (so work is in flight long
enough to disconnect from, time out or drain), ``active`` counts the engine requests open right
now (closing an iterator ends one: that is an abort), and ``die()`` simulates the engine
process dying: open requests fail with ``EngineFailed`` and ``errored`` turns true, as vLLM's
``EngineDeadError`` does. ``hang`` makes every request stick the way buggy code can (ignoring
cancellation, on a thread that never returns, blocking the event loop), so tests can show the
shutdown still ends. ``quorum serve`` uses it instead of vLLM only when the hidden test setting
``QUORUM_TEST_ENGINE=scripted`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal

from decoding.engine import EngineInfo, Prompt, SamplingSpec
from decoding.samples import GenerationChunk
from server.engines.scripted import ScriptedEngine
from server.errors import EngineFailed
from server.runtime.settings import Settings

log = logging.getLogger(__name__)
Hang = Literal["none", "cancel", "thread", "loop"]


async def hang_forever(kind: Hang) -> None:
    """Never return, stuck the way ``kind`` says (logged first, so a test knows it began)."""
    log.warning("test engine: hanging", extra={"hang": kind})
    if kind == "loop":
        time.sleep(10**6)  # noqa: ASYNC251 - blocking the event loop is the point
    elif kind == "thread":
        await asyncio.to_thread(threading.Event().wait)  # the thread outlives any cancel
    while True:  # "cancel": every cancellation is swallowed
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10**6)


@dataclass
class PacedEngine:
    """``ScriptedEngine`` at a fixed pace, with an abort counter and a kill switch."""

    inner: ScriptedEngine = field(default_factory=ScriptedEngine)
    token_delay_s: float = 0.0
    errored: bool = False
    active: int = 0
    started: int = 0
    closed: int = 0
    steps: int = 0  # engine steps taken, over all requests: aborted work stops adding to it
    hang: Hang = "none"
    _worker: asyncio.subprocess.Process | None = None
    _died: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def info(self) -> EngineInfo:
        """What the wrapped engine pretends to serve."""
        return self.inner.info

    @property
    def ready(self) -> bool:
        """Ready while alive."""
        return not self.errored

    async def start(self) -> None:
        """Nothing to load; a hanging engine starts a stand-in worker process that its stop
        leaves running (as a wedged engine would), for the reaper to end."""
        if self.hang != "none":
            sleeper = "import time; time.sleep(600)"
            self._worker = await asyncio.create_subprocess_exec(sys.executable, "-c", sleeper)

    async def stop(self) -> None:
        """Nothing to release."""

    def die(self) -> None:
        """Simulate the engine process dying: every open and later request fails."""
        self.errored = True
        self._died.set()

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        """The scripted samples, one token per ``token_delay_s``; whole at the end unless
        streaming."""
        if self.errored:
            raise EngineFailed("the engine is dead")
        self.active += 1
        self.started += 1
        try:
            if self.hang != "none":
                await hang_forever(self.hang)
            pending: list[GenerationChunk] = []
            async for chunk in self.inner.generate(prompt, spec, stream=True):
                await self._step()
                if stream:
                    yield chunk
                else:
                    pending.append(chunk)
            if not stream and pending:
                deltas = [d for c in pending for d in c.deltas]
                yield GenerationChunk(pending[-1].prompt_tokens, deltas)
        finally:
            self.active -= 1
            self.closed += 1

    async def _step(self) -> None:
        self.steps += 1
        if self.token_delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._died.wait(), self.token_delay_s)
        if self.errored:
            raise EngineFailed("the engine died while serving this request")


def engine_for_tests(settings: Settings) -> PacedEngine | None:
    """The engine the hidden test settings ask for, or None for the real one."""
    if settings.test_engine != "scripted":
        return None
    inner = ScriptedEngine(max_model_len=settings.max_model_len)
    delay_s = settings.test_token_delay_ms / 1000
    return PacedEngine(inner=inner, token_delay_s=delay_s, hang=settings.test_hang)
