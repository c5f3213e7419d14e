"""The server's lifecycle: requests in flight, draining, aborting, and why the process exits.

A shutdown (SIGTERM, or the engine dying) turns readiness to 503 at once and refuses new work;
in-flight requests get until the drain timeout to finish, then whatever is left is aborted.
The HTTP server (``server.runtime.serve``) watches ``shutdown_requested`` and exits with
``exit_code`` once ``drain`` returns.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from decoding.engine import ManagedEngine

log = logging.getLogger(__name__)

AbortReason = Literal["client_disconnect", "timeout", "shutdown"]
ABORT_GRACE_S = 5.0


@dataclass(eq=False)
class InflightRequest:
    """One request being served; ``abort`` asks its guard to cancel it."""

    aborted: asyncio.Event = field(default_factory=asyncio.Event)
    reason: AbortReason | None = None

    def abort(self, reason: AbortReason) -> None:
        """Ask for the request to be cancelled (its engine work aborted)."""
        if self.reason is None:
            self.reason = reason
        self.aborted.set()


class Lifecycle:
    """Requests in flight, readiness and the shutdown state of one app."""

    def __init__(self) -> None:
        self.ready = False  # the engine is loaded and warmed
        self.draining = False  # a shutdown began: readiness is 503, new requests are refused
        self.exit_code = 0
        self.shutdown_requested = False
        self.shutdown_reason = ""
        self._inflight: set[InflightRequest] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        """A (re)started lifespan serves afresh: no drain, no exit pending."""
        self.draining = False
        self.exit_code = 0
        self.shutdown_requested = False
        self.shutdown_reason = ""

    @property
    def serving(self) -> bool:
        """Whether new work is accepted: ready and not draining."""
        return self.ready and not self.draining

    @property
    def inflight(self) -> int:
        """Requests being served now."""
        return len(self._inflight)

    def enter(self) -> InflightRequest:
        """Register a request that is starting."""
        request = InflightRequest()
        self._inflight.add(request)
        self._idle.clear()
        return request

    def leave(self, request: InflightRequest) -> None:
        """Unregister a finished request."""
        self._inflight.discard(request)
        if not self._inflight:
            self._idle.set()

    def request_shutdown(self, *, exit_code: int = 0, reason: str = "signal") -> None:
        """Start a shutdown now: safe to call from a signal handler (it only sets flags)."""
        self.draining = True
        self.exit_code = max(self.exit_code, exit_code)
        if not self.shutdown_requested:
            self.shutdown_requested = True
            self.shutdown_reason = reason

    def abort_all(self, reason: AbortReason) -> None:
        """Abort every request in flight."""
        for request in list(self._inflight):
            request.abort(reason)

    async def drain(self, timeout_s: float) -> bool:
        """Wait for in-flight requests to finish, up to ``timeout_s``; abort the rest.
        Returns whether everything finished on its own."""
        context = {"inflight": self.inflight, "timeout_s": timeout_s}
        log.info("draining", extra={**context, "reason": self.shutdown_reason})
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            log.warning("drain timeout: aborting in-flight requests", extra={"left": self.inflight})
            self.abort_all("shutdown")
            try:
                await asyncio.wait_for(self._idle.wait(), ABORT_GRACE_S)
            except TimeoutError:
                log.error("requests did not end after abort", extra={"left": self.inflight})
            return False


async def watch_engine(
    engine: ManagedEngine, lifecycle: Lifecycle, interval_s: float = 0.25
) -> None:
    """Turn an engine's death into a shutdown with a non-zero exit code (so an orchestrator
    restarts the process); ``/health`` reports it from the engine's ``errored`` meanwhile."""
    # Polled: engines expose death as a property (vLLM's ``errored``), not as an event.
    while not engine.errored:  # noqa: ASYNC110
        await asyncio.sleep(interval_s)
    log.error("the engine died: shutting down to be restarted")
    lifecycle.request_shutdown(exit_code=1, reason="engine_dead")
