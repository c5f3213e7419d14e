"""Work in flight: refuse it while draining, abort it when the client leaves or time runs out.

Starlette keeps running a handler after its client disconnected; here each request runs as a
task that is cancelled the moment the client goes away, the server-side timeout passes, or a
shutdown's drain time is over. Cancelling the task closes the engine iterators it holds, which
aborts their engine requests (every sample of an ``n``-sample request). A response not yet
started gets an error status (504 on timeout, 503 on shutdown); a started event stream gets an
SSE error event and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from decoding.cancelling import cancel_and_wait
from server.api.middleware.common import is_public, record_of, send_error
from server.errors import EngineUnavailable, QuorumError, RequestTimedOut
from server.runtime.lifecycle import AbortReason, InflightRequest, Lifecycle
from server.serving.sse import DONE, event

log = logging.getLogger(__name__)


class InflightMiddleware:
    """Gate new work while draining; run each request as an abortable task."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle, timeout_s: float | None) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        if self.lifecycle.draining:
            if record is not None:
                record.rejected = "draining"
            error = EngineUnavailable(
                "The server is shutting down; retry on another replica.",
                headers={"Retry-After": "1"},
            )
            await send_error(send, error, close=True)
            return
        inflight = self.lifecycle.enter()
        try:
            await _Guard(self.app, inflight, self.timeout_s).run(scope, receive, send)
        finally:
            self.lifecycle.leave(inflight)
            if record is not None and inflight.reason is not None:
                record.aborted = inflight.reason


class _Guard:
    """One request's task and the three things that may cut it short."""

    def __init__(self, app: ASGIApp, inflight: InflightRequest, timeout_s: float | None) -> None:
        self.app = app
        self.inflight = inflight
        self.timeout_s = timeout_s
        self.body_read = False
        self.disconnected = asyncio.Event()
        self.started = False
        self.finished = False
        self.event_stream = False
        self._watcher: asyncio.Task[None] | None = None

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, or abort it and reply as well as the protocol still allows."""

        async def app_receive() -> Message:
            if self.body_read:
                # One reader of the real channel (the watcher); everyone else hears from it.
                await self.disconnected.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
            elif not message.get("more_body", False):
                self.body_read = True
                self._watcher = asyncio.create_task(self._watch(receive))
            return message

        async def app_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.started = True
                self.event_stream = _is_event_stream(message)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                self.finished = True
            await send(message)

        task: asyncio.Task[None] = asyncio.create_task(
            _call(self.app, scope, app_receive, app_send)
        )
        disconnected = asyncio.create_task(self.disconnected.wait())
        aborted = asyncio.create_task(self.inflight.aborted.wait())
        try:
            done, _ = await asyncio.wait(
                {task, disconnected, aborted},
                timeout=self.timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if task in done or self.finished:
                # Finished (or its last byte sent, its clean-up still running): not an abort.
                await task
                return
            reason: AbortReason = "shutdown"
            if disconnected in done:
                reason = "client_disconnect"
            elif not done:
                reason = "timeout"
            self.inflight.abort(reason)
            await cancel_and_wait([task])  # once: a second cancel would cut its clean-up short
            log.info("request aborted", extra={"reason": reason})
            if reason != "client_disconnect" and not self.finished:
                await self._reply_after_abort(send, reason)
        finally:
            for helper in (disconnected, aborted, self._watcher):
                if helper is not None:
                    helper.cancel()
            if not task.done():
                await cancel_and_wait([task])

    async def _watch(self, receive: Receive) -> None:
        """After the body, the only thing the client can still say is that it left."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return

    async def _reply_after_abort(self, send: Send, reason: AbortReason) -> None:
        error: QuorumError = (
            RequestTimedOut("The request took longer than this server's request timeout.")
            if reason == "timeout"
            else EngineUnavailable("The server shut down before this request finished.")
        )
        if not self.started:
            await send_error(send, error, close=True)
        elif self.event_stream:
            tail = event(error.body()) + DONE
            await send({"type": "http.response.body", "body": tail.encode(), "more_body": False})
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _call(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    await app(scope, receive, send)


def _is_event_stream(start: Message) -> bool:
    for name, value in start.get("headers", ()):
        if bytes(name).lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False
