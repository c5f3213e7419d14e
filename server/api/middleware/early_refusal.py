"""Refusals at capacity before the ASGI stack: the cheapest 429 a retry storm can get.

``AdmissionMiddleware`` refuses a full server's requests before reading their bodies, but each
refusal still runs the whole stack around it: Starlette's error layer, the observing layer's
route match, metrics and access-log line, auth, the in-flight guard. Under a storm of clients
that retry at once (about 1,000 requests a second at twice capacity on a small machine) that
work shares the event loop with the admitted requests' per-token work, and every refusal slows
the answers (``bench/load.py``).

``EarlyRefusal`` is asked by the connection protocol (``server.runtime.connections``) once a
request's headers are in. When the request would be refused with 429 anyway, it returns the
reply (OpenAI error body, ``Retry-After``, ``x-request-id``), which the protocol writes to the
socket itself, or, on a connection's first request, runs as a small ASGI app in place of the
stack; either way the unread body is skipped and the connection kept. It stands aside (returns
None, and the stack answers) whenever a layer could answer otherwise: the server not serving
(503), keys configured and this request's key not accepted (401), CORS configured (a browser
needs its headers), ``Expect: 100-continue`` (the stack closes such a connection), a target
that is not a plain path. Metrics count each refusal as the observing layer would; the access
log gets a summary line (how many, over how long) a second after the first of a burst, rather
than a line each, so that a request storm does not become a log storm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute

from server.api.admission import MODE_ROUTES
from server.api.middleware.admission import overloaded
from server.api.middleware.auth import BearerKeys
from server.api.middleware.common import error_reply, header_in
from server.api.middleware.observe import request_id, route_label
from server.runtime.admission import Admission
from server.runtime.connections import EarlyReply
from server.runtime.lifecycle import Lifecycle
from server.runtime.metrics import Metrics
from server.runtime.settings import Settings

log = logging.getLogger("quorum.access")
SUMMARY_EVERY_S = 1.0
Headers = Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True)
class _Counters:
    """A route's refusal metrics (labelled once) and its reply's fixed parts."""

    requests: Counter
    latency: Histogram
    first_byte: Histogram
    head: list[tuple[bytes, bytes]]
    body: bytes


class EarlyRefusal:
    """Decides, from a request's method, target and headers, whether to refuse it at once."""

    def __init__(
        self,
        settings: Settings,
        lifecycle: Lifecycle,
        admission: Admission,
        metrics: Metrics,
        routes: list[BaseRoute],
    ) -> None:
        self.lifecycle = lifecycle
        self.admission = admission
        self.metrics = metrics
        self.routes = routes
        self.keys = BearerKeys(settings.api_keys)
        self.retry_after_s = settings.retry_after_s
        self.enabled = not settings.cors_origins
        self._seen: dict[str, _Counters] = {}  # path -> what its refusals need (matched paths)
        self._rejections = metrics.rejections.labels("overloaded")
        self._unlogged = 0  # refusals since the last summary line
        self._first_unlogged = 0.0

    def __call__(self, method: bytes, target: bytes, headers: Headers) -> EarlyReply | None:
        """The 429 to answer if this request is to be refused now, else None."""
        if (
            not self.enabled
            or method != b"POST"
            or not target.startswith(b"/v1/")
            or self.admission.in_use < self.admission.capacity
            or not self.lifecycle.serving
        ):
            return None
        path_bytes = target.partition(b"?")[0]
        if b"%" in path_bytes or not path_bytes.isascii():
            return None  # the stack decodes it; its match decides
        if (header_in(headers, b"expect") or b"").lower() == b"100-continue":
            return None
        if not self.keys.admit(header_in(headers, b"authorization")):
            return None
        return self._refusal(path_bytes.decode("ascii"), request_id(headers))

    def _counters(self, path: str) -> _Counters:
        """The metrics children and reply parts of refusals on this path, made once per route."""
        found = self._seen.get(path)
        if found is not None:
            return found
        route = route_label({"type": "http", "path": path, "method": "POST"}, self.routes)
        mode = MODE_ROUTES.get(path, "none")
        head, body = error_reply(overloaded(self.admission.capacity, self.retry_after_s))
        m = self.metrics
        found = _Counters(
            requests=m.requests.labels(route, mode, "429"),
            latency=m.latency.labels(route, mode),
            first_byte=m.first_byte.labels(route, mode),
            head=head,
            body=body,
        )
        if route != "unmatched":
            self._seen[path] = found  # bounded by the app's routes
        return found

    def _refusal(self, path: str, request_id: str) -> EarlyReply:
        start = time.perf_counter()
        counters = self._counters(path)
        headers = [*counters.head, (b"x-request-id", request_id.encode("latin-1"))]

        def sent() -> None:
            self._account(counters, time.perf_counter() - start)

        return EarlyReply(429, headers, counters.body, sent)

    def _account(self, counters: _Counters, duration: float) -> None:
        counters.requests.inc()
        counters.latency.observe(duration)
        counters.first_byte.observe(duration)
        self._rejections.inc()
        if not self._unlogged:
            self._first_unlogged = time.monotonic()
            asyncio.get_running_loop().call_later(SUMMARY_EVERY_S, self.flush)
        self._unlogged += 1

    def flush(self) -> None:
        """One access-log line for the refusals not yet logged: a second after a burst's
        first, and at shutdown, so a burst in the process's last second is not lost."""
        if not self._unlogged:
            return  # already written (shutdown came before the timer)
        log.info(
            "refused at capacity",
            extra={
                "status": 429,
                "rejected": "overloaded",
                "count": self._unlogged,
                "seconds": round(time.monotonic() - self._first_unlogged, 1),
            },
        )
        self._unlogged = 0
