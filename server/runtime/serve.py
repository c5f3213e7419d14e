"""Serving with a graceful shutdown: drain on SIGTERM, exit non-zero when the engine died.

uvicorn stops listening the moment it gets SIGTERM, so a load balancer still sending traffic
would see refused connections while in-flight work finishes. Here the first SIGTERM (or SIGINT)
only starts a drain: readiness turns 503 at once, new requests get 503 (the socket stays open
to say so), in-flight requests get ``drain_timeout_s`` to finish, the rest are aborted; then
uvicorn is told to exit, and the app's lifespan stops the engine and its worker processes. A
second SIGINT cuts the drain short. An engine death (``server.runtime.lifecycle.watch_engine``)
takes the same path with exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from server.runtime.connections import ConnectionLimits, guarded_protocol
from server.runtime.lifecycle import Lifecycle
from server.runtime.metrics import Metrics
from server.runtime.reaper import Process, descendants, reap
from server.runtime.settings import Settings

log = logging.getLogger(__name__)
# After the drain nothing is in flight; uvicorn only closes idle connections and the lifespan.
GRACEFUL_SHUTDOWN_S = 5


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with signals routed to the app's lifecycle instead of an exit."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_timeout_s: float):
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_timeout_s = drain_timeout_s
        self._interrupts = 0
        self._drain: asyncio.Task[bool] | None = None
        self.engine_processes: list[Process] = []

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Any signal starts the drain (repeats are harmless: wrappers forward SIGTERM too);
        a second SIGINT (Ctrl-C twice) aborts what is left and exits."""
        if sig == signal.SIGINT:
            self._interrupts += 1
        self.lifecycle.request_shutdown(exit_code=0, reason=signal.Signals(sig).name)
        if self._interrupts > 1:
            self.lifecycle.abort_all("shutdown")

    async def on_tick(self, counter: int) -> bool:
        """Start the drain when a shutdown was requested; exit once it is over."""
        if counter == 0:  # the first tick: the engine and its workers are up
            self.engine_processes = await asyncio.to_thread(descendants, os.getpid())
        if self.lifecycle.shutdown_requested and self._drain is None:
            # After an engine death, in-flight requests fail at once: a short grace suffices.
            timeout = self.drain_timeout_s if self.lifecycle.exit_code == 0 else 5.0
            self._drain = asyncio.create_task(self.lifecycle.drain(timeout))
        if self._drain is not None and self._drain.done():
            self.should_exit = True
        return await super().on_tick(counter)


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
        http=guarded_protocol(limits, lambda reason: metrics.rejections.labels(reason).inc()),
        timeout_keep_alive=settings.keep_alive_timeout_s,
        log_level=settings.log_level,
        log_config=None,  # keep the JSON logging configured by the CLI
        access_log=False,  # server.api.middleware.observe writes the access log
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    server = DrainingServer(config, lifecycle, settings.drain_timeout_s)
    server.run()
    # A clean stop has already ended the engine's processes; a dead engine may leave orphans.
    if orphans := reap(server.engine_processes):
        log.warning("stopped engine processes left behind", extra={"count": orphans})
    if lifecycle.exit_code:
        log.error("exiting with an error", extra={"exit_code": lifecycle.exit_code})
    return lifecycle.exit_code
