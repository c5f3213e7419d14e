"""Admission control on the ASGI path: refuse what does not fit before paying for its body.

When the server is already full (every sample of the capacity running or queued), a request
is refused at once with 429, ``Retry-After`` and an OpenAI error body, without reading or
parsing its body. The connection stays open: uvicorn's parser skips the unread body, and the
connection's header timeout bounds how long it may take (``server.runtime.connections``);
closing it would double a refusal's cost, since every retry would open a new connection. Only
a client waiting for ``100 Continue`` gets ``Connection: close``: it may never send the body
the parser would wait for. Otherwise the body is
read once (bounded as ``body_limit`` bounds it), weighed in samples, and the request admitted
or refused. Under a client retry storm a refusal thus costs the headers and a small write,
not a JSON parse and a trip through the framework. An admitted request holds its weight until
its task ends: its response sent in full, its client gone, or its work aborted.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.admission import MODE_ROUTES, request_mode, request_weight
from server.api.middleware.body_limit import BodyBounds, replaying
from server.api.middleware.common import header, record_of, send_error
from server.errors import Overloaded
from server.runtime.admission import Admission
from server.runtime.settings import Settings


def overloaded(capacity: int, retry_after_s: int) -> Overloaded:
    """The 429 of a full server, with its ``Retry-After``."""
    retry = str(retry_after_s)
    return Overloaded(
        f"The server is at capacity ({capacity} samples running or queued); retry after {retry} s.",
        headers={"Retry-After": retry},
    )


def _json_object(scope: Scope, body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (the route reports what is wrong with it)."""
    content_type = header(scope, b"content-type") or b""
    if b"json" not in content_type:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


class AdmissionMiddleware:
    """Weigh each inference request in samples; admit it, or refuse it with 429."""

    def __init__(self, app: ASGIApp, admission: Admission, settings: Settings) -> None:
        self.app = app
        self.admission = admission
        self.settings = settings
        self.bounds = BodyBounds(settings.max_body_bytes, settings.body_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        if self.admission.in_use >= self.admission.capacity:
            if record is not None:
                record.mode = MODE_ROUTES.get(path, record.mode)
            expects = header(scope, b"expect") or b""
            await self._refuse(scope, send, close=expects.lower() == b"100-continue")
            return
        body = await self.bounds.read(scope, receive, send)
        if body is None:
            return
        parsed = _json_object(scope, body)
        weight = request_weight(path, parsed or {}, self.settings)
        if record is not None:
            record.samples = weight
            if parsed is not None:  # unparseable: no mode known
                record.mode = request_mode(path, parsed)
        if not self.admission.try_acquire(weight):
            await self._refuse(scope, send, close=False)
            return
        try:
            await self.app(scope, replaying(body, receive), send)
        finally:
            self.admission.release(weight)

    async def _refuse(self, scope: Scope, send: Send, *, close: bool) -> None:
        record = record_of(scope)
        if record is not None:
            record.rejected = "overloaded"
        error = overloaded(self.admission.capacity, self.settings.retry_after_s)
        await send_error(send, error, close=close)
