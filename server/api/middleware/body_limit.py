"""The request body, read once, bounded in size (413) and in pace (408), before anything parses it.

A declared ``Content-Length`` over the limit is refused without reading a byte; a chunked body
is read up to the limit and refused as soon as it passes it. A client that stops sending its
body for longer than the body timeout gets 408 and a closed connection, so a stalled upload
cannot hold a request (and its connection) open. A body within the bounds is buffered here and
replayed to the app (which would buffer it whole anyway), so the app never sees a partial or
oversized body. Admission (``server.api.middleware.admission``) reads through the same
``read_body`` before it weighs a request.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.middleware.common import header, record_of, send_error
from server.errors import ClientTooSlow, InvalidRequest, PayloadTooLarge, QuorumError


class BodyBounds:
    """How large a body may be, and how long it may pause between chunks."""

    def __init__(self, limit: int, stall_timeout_s: float) -> None:
        self.limit = limit
        self.stall_timeout_s = stall_timeout_s

    async def _collect(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None if the client left; raises what refuses it."""
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise InvalidRequest("invalid Content-Length")
            if int(declared) > self.limit:
                raise self._too_large(declared.decode())
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout(self.stall_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise ClientTooSlow(
                    f"The request body stalled for more than {self.stall_timeout_s:g} s."
                ) from None
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise self._too_large(f"more than {self.limit}")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is {size} bytes; this server accepts at most {self.limit}."
        )

    async def read(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body; or None once the client has been answered (413, 408, 400) or has
        gone away."""
        record = record_of(scope)
        try:
            body = await self._collect(scope, receive)
        except QuorumError as error:
            if record is not None and error.code is not None:
                record.rejected = error.code
            await send_error(send, error, close=True)
            return None
        if body is None and record is not None:
            record.aborted = "client_disconnect"  # it went away while sending: nothing to serve
        return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body first, then the client's own messages."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``limit`` bytes (413) or that stall (408)."""

    def __init__(self, app: ASGIApp, limit: int, stall_timeout_s: float) -> None:
        self.app = app
        self.bounds = BodyBounds(limit, stall_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await self.bounds.read(scope, receive, send)
        if body is not None:
            await self.app(scope, replaying(body, receive), send)
