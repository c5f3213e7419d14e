"""413 for bodies over the configured size, decided before anything parses them.

A declared ``Content-Length`` over the limit is refused without reading a byte; a chunked body
is read up to the limit and refused as soon as it passes it. A body within the limit is
buffered here and replayed to the app (which would buffer it whole anyway), so the app never
sees a partial or oversized body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.middleware.common import header, record_of, send_error
from server.errors import InvalidRequest, PayloadTooLarge


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``limit`` bytes with an OpenAI-shaped 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, scope: Scope, send: Send, size: str) -> None:
        record = record_of(scope)
        if record is not None:
            record.rejected = "payload_too_large"
        error = PayloadTooLarge(
            f"The request body is {size} bytes; this server accepts at most {self.limit}.",
        )
        await send_error(send, error, close=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, InvalidRequest("invalid Content-Length"), close=True)
                return
            if int(declared) > self.limit:
                await self._refuse(scope, send, declared.decode())
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away while sending: nothing to serve.
                record = record_of(scope)
                if record is not None:
                    record.aborted = "client_disconnect"
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send, f"more than {self.limit}")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
