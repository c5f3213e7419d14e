"""Serving with a graceful shutdown: drain on SIGTERM, exit non-zero when the engine died.

uvicorn stops listening the moment it gets SIGTERM, so a load balancer still sending traffic
would see refused connections while in-flight work finishes. Here the first SIGTERM (or SIGINT)
only starts a drain: readiness turns 503 at once, new requests get 503 (the socket stays open
to say so), in-flight requests get ``drain_timeout_s`` to finish, the rest are aborted; then
uvicorn is told to exit, and the app's lifespan stops the engine and its worker processes. A
second SIGINT cuts the drain short. An engine death (``server.runtime.lifecycle.watch_engine``)
takes the same path with exit code 1.

Whatever is stuck (a handler that ignores cancellation, a thread that never returns, a blocked
event loop), the process still ends: a shutdown arms a deadline on a thread of its own, and
past it the engine is stopped as well as can be, its processes are reaped and the process exits
with ``FORCED_EXIT_CODE`` and a logged reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from decoding.engine import ManagedEngine
from server.runtime.connections import ConnectionLimits, guarded_protocol
from server.runtime.judge_pool import JudgePool
from server.runtime.lifecycle import ABORT_GRACE_S, Lifecycle
from server.runtime.metrics import Metrics
from server.runtime.reaper import Process, descendants, reap
from server.runtime.settings import Settings

log = logging.getLogger(__name__)
# After the drain nothing is in flight; uvicorn only closes idle connections and the lifespan.
GRACEFUL_SHUTDOWN_S = 5
# After an engine death, in-flight requests fail at once: a short drain suffices.
ENGINE_DEATH_DRAIN_S = 5.0
# The deadline, past the drain: the abort grace and a normal engine stop fit inside it.
EXIT_DEADLINE_AFTER_DRAIN_S = ABORT_GRACE_S + 5.0
HARD_STOP_S = 2.0  # past the deadline: for the engine's stop, then for its processes' exit
FORCED_EXIT_CODE = 1


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with signals routed to the app's lifecycle instead of an exit, and a
    deadline after which the process exits whatever is stuck."""

    def __init__(
        self,
        config: uvicorn.Config,
        lifecycle: Lifecycle,
        drain_timeout_s: float,
        engine: ManagedEngine | None = None,
        judge: JudgePool | None = None,
    ):
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_timeout_s = drain_timeout_s
        self.engine = engine
        self.judge = judge
        self._interrupts = 0
        self._drain: asyncio.Task[bool] | None = None
        self._deadline: threading.Timer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.engine_processes: list[Process] = []

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Any signal starts the drain (repeats are harmless: wrappers forward SIGTERM too);
        a second SIGINT (Ctrl-C twice) aborts what is left and exits."""
        if sig == signal.SIGINT:
            self._interrupts += 1
        self.lifecycle.request_shutdown(exit_code=0, reason=signal.Signals(sig).name)
        # Armed here too, not only on the next tick: the event loop may be the thing stuck.
        self.arm_deadline()
        if self._interrupts > 1:
            self.lifecycle.abort_all("shutdown")

    async def on_tick(self, counter: int) -> bool:
        """Start the drain when a shutdown was requested; exit once it is over."""
        if counter == 0:  # the first tick: the engine and its workers are up
            self._loop = asyncio.get_running_loop()
            # The judge pool's processes are not the engine's: they are stopped apart.
            judging = [] if self.judge is None else [pid for pid, _ in self.judge.helpers]
            self.engine_processes = await asyncio.to_thread(descendants, os.getpid(), judging)
        if self.lifecycle.shutdown_requested and self._drain is None:
            self.arm_deadline()
            self._drain = asyncio.create_task(self.lifecycle.drain(self._drain_s()))
        if self._drain is not None and self._drain.done():
            self.should_exit = True
        return await super().on_tick(counter)

    def _drain_s(self) -> float:
        return self.drain_timeout_s if self.lifecycle.exit_code == 0 else ENGINE_DEATH_DRAIN_S

    def arm_deadline(self) -> None:
        """Start the shutdown's deadline once (safe from a signal handler: only a timer
        thread starts)."""
        if self._deadline is not None:
            return
        self._deadline = threading.Timer(self._drain_s() + EXIT_DEADLINE_AFTER_DRAIN_S, self._exit)
        self._deadline.daemon = True  # a normal exit does not wait for it
        self._deadline.start()

    def _exit(self) -> None:
        """Past the deadline: stop the engine as well as can be, reap its processes, exit."""
        log.error(
            "shutdown deadline passed: exiting now",
            extra={
                "reason": self.lifecycle.shutdown_reason,
                "inflight": self.lifecycle.inflight,
                "exit_code": FORCED_EXIT_CODE,
            },
        )
        if self.engine is not None and self._loop is not None and not self._loop.is_closed():
            try:  # only if the event loop still turns: a blocked one never runs it
                stopping = asyncio.run_coroutine_threadsafe(self.engine.stop(), self._loop)
                stopping.result(timeout=HARD_STOP_S)
            except Exception:  # best effort on the way out, whatever failed
                log.warning("the engine did not stop in time")
        known = {pid for pid, _ in self.engine_processes}
        left = self.engine_processes + [p for p in descendants(os.getpid()) if p[0] not in known]
        reap(left, grace_s=HARD_STOP_S)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(FORCED_EXIT_CODE)


def run_server(app: FastAPI, settings: Settings) -> int:
    """Serve until a shutdown; the process exit code (0 after a drain, 1 after engine death)."""
    lifecycle: Lifecycle = app.state.lifecycle
    metrics: Metrics = app.state.metrics
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(
            limits,
            lambda reason: metrics.rejections.labels(reason).inc(),
            getattr(app.state, "early_refusal", None),
        ),
        timeout_keep_alive=settings.keep_alive_timeout_s,
        log_level=settings.log_level,
        log_config=None,  # keep the JSON logging configured by the CLI
        access_log=False,  # server.api.middleware.observe writes the access log
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    judge: JudgePool | None = getattr(app.state, "judge", None)
    engine: ManagedEngine = app.state.quorum.engine
    server = DrainingServer(config, lifecycle, settings.drain_timeout_s, engine, judge)
    server.run()
    if judge is not None:
        # Its workers are dead (the lifespan stopped the pool); the fork server and
        # multiprocessing's resource tracker would exit only once they notice this process
        # has: stop them now, so nothing of the server outlives it.
        reap(sorted(judge.helpers), grace_s=0.2)
    # A clean stop has already ended the engine's processes; a dead engine may leave orphans.
    if orphans := reap(server.engine_processes):
        log.warning("stopped engine processes left behind", extra={"count": orphans})
    if lifecycle.exit_code:
        log.error("exiting with an error", extra={"exit_code": lifecycle.exit_code})
    return lifecycle.exit_code
