"""The outermost layer: a request id, metrics and one structured access-log line per request.

It sees every outcome, including the 401, 413, 429 and 503 replies of the inner layers and the
requests whose client went away (status 499, nginx's "client closed request"). The log line
carries the route template, mode, status, duration and sample count: never the prompt, the
completion or any header.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.middleware.common import RECORD_KEY, RequestRecord, header_in, is_public
from server.runtime.logging_setup import REQUEST_ID
from server.runtime.metrics import CURRENT, Metrics

log = logging.getLogger("quorum.access")
CLIENT_CLOSED = 499
MAX_REQUEST_ID_CHARS = 64


def route_label(scope: Scope, routes: list[BaseRoute]) -> str:
    """The route template the path matches (a bounded set), never the raw path; also for
    requests an outer layer refused before routing."""
    route = scope.get("route")
    if route is None:
        for candidate in routes:
            match, _ = candidate.matches(scope)
            if match != Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``x-request-id`` if it is short and printable, else a new one."""
    given = header_in(headers, b"x-request-id")
    if given is not None:
        text = given.decode("latin-1")
        if 0 < len(text) <= MAX_REQUEST_ID_CHARS and text.isprintable():
            return text
    return uuid.uuid4().hex


class ObserveMiddleware:
    """Count, time and log every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        record = RequestRecord(request_id=request_id(scope.get("headers", ())))
        scope[RECORD_KEY] = record
        status = 500
        first_byte: float | None = None
        public = is_public(scope)

        async def observed_send(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = int(message["status"])
                first_byte = time.perf_counter() - start
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", record.request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        token = CURRENT.set(self.metrics)
        request_token = REQUEST_ID.set(record.request_id)  # on every log line of this request
        if not public:
            self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            CURRENT.reset(token)
            REQUEST_ID.reset(request_token)
            if not public:
                self.metrics.inflight.dec()
            if record.aborted == "client_disconnect":
                status = CLIENT_CLOSED
            self._account(scope, record, status, time.perf_counter() - start, first_byte)

    def _account(
        self,
        scope: Scope,
        record: RequestRecord,
        status: int,
        duration: float,
        first_byte: float | None,
    ) -> None:
        route = route_label(scope, self.routes)
        m = self.metrics
        m.requests.labels(route, record.mode, str(status)).inc()
        m.latency.labels(route, record.mode).observe(duration)
        if first_byte is not None:
            m.first_byte.labels(route, record.mode).observe(first_byte)
        if record.rejected is not None:
            m.rejections.labels(record.rejected).inc()
        if record.aborted is not None:
            m.aborts.labels(record.aborted).inc()
        level = logging.DEBUG if is_public(scope) else logging.INFO
        log.log(
            level,
            "request",
            extra={
                "request_id": record.request_id,
                "method": scope.get("method"),
                "route": route,
                "mode": record.mode,
                "status": status,
                "duration_ms": round(duration * 1000, 1),
                "samples": record.samples,
                "rejected": record.rejected,
                "aborted": record.aborted,
            },
        )
