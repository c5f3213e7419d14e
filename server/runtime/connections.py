"""The HTTP protocol Quorum serves with: uvicorn's httptools protocol, with the bounds it lacks.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no header timeout:
a connection that never sends a byte, or drips its headers a byte at a time, is held forever
(slowloris), and httptools buffers a header of any size. The subclass built here adds, per
connection:

- a header timeout, from accept (or from the first byte of a keep-alive connection's next
  request) to the end of the headers: past it the connection is closed, with an OpenAI-shaped
  408 if part of a request came (an idle connection that sent nothing is just closed). A request
  answered before its body was read (a refusal) keeps its connection, and the same timeout
  bounds the rest of its body plus the next request's head, since uvicorn's keep-alive timer
  restarts on every byte;
- a header size cap: 431 and a closed connection past ``max_header_bytes`` of request line and
  headers, counted as they arrive, so a header that never ends is cut off too;
- a connection cap: past ``max_connections`` open connections a new one is closed at accept,
  before anything is read, so the cap bounds sockets and memory. uvicorn's ``limit_concurrency``
  does not: it counts open connections and running tasks together, the asking connection
  included (so it refuses at ``limit - 1`` connections), and answers a plain-text 503 only once
  the request's headers have been read, holding the socket until then.

- an early answer: once a request's headers are in, ``early`` (the app's
  ``server.api.middleware.early_refusal``) may hand back a whole reply for a request that is
  refused anyway (429 at capacity), so that a retry storm's refusals cost the event loop as
  little as they can. On a kept-alive HTTP/1.1 connection whose last response is complete the
  reply is written to the socket at once: no request task, no ASGI call; uvicorn's parser then
  skips the unread body (its cycle is complete) and the header timeout bounds it. On a
  connection's first request (no cycle yet) or behind a pipelined one, it runs as a small ASGI
  app in place of the stack, so uvicorn keeps its own bookkeeping.

A slow body is bounded where it is waited for, in ``server.api.middleware.body_limit``. Nothing
here patches uvicorn: ``serve`` passes the class as ``http=`` in its config.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.errors import ClientTooSlow, HeadersTooLarge, QuorumError

HEADERS_END = b"\r\n\r\n"
Refusal = Callable[[str], None]  # told the reason of each connection cut: for the metrics
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class EarlyReply:
    """A whole reply given before the app runs; ``sent`` is told once it is written."""

    status: int
    headers: Headers
    body: bytes
    sent: Callable[[], None]


# (method, request target, headers) -> a reply in place of the stack's, or None
EarlyAnswer = Callable[[bytes, bytes, Headers], EarlyReply | None]


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may hold: time for its headers, their size, and how many
    connections may be open at once."""

    header_timeout_s: float
    max_header_bytes: int
    max_connections: int


def raw_response(status: int, headers: Headers, body: bytes) -> bytes:
    """A whole HTTP/1.1 response for the socket (``headers`` include its content-length)."""
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode("latin-1")]
    head += [name + b": " + value + b"\r\n" for name, value in headers]
    return b"".join(head) + b"\r\n" + body


def raw_error(error: QuorumError) -> bytes:
    """A whole error response for the socket, for when no ASGI request exists to answer."""
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return raw_response(error.status, headers, body)


def reply_app(reply: EarlyReply) -> ASGI3Application:
    """An early reply as an ASGI app, for when uvicorn must run the request."""

    async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": reply.headers}
        )
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})
        reply.sent()

    return app


def guarded_protocol(
    limits: ConnectionLimits, on_refusal: Refusal, early: EarlyAnswer | None = None
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class with ``limits`` enforced on every connection, and
    ``early`` asked first about every request."""
    too_slow = raw_error(ClientTooSlow("The request headers did not arrive in time."))
    too_large = raw_error(
        HeadersTooLarge(
            f"The request line and headers exceed {limits.max_header_bytes} bytes.",
        )
    )

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """One client connection, held only within ``limits``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.refused = False  # closed at accept: uvicorn never saw it
            self.reading_headers = True  # the next bytes belong to a request's head
            self.header_bytes = 0
            self.header_tail = b""  # a terminator may span two reads
            self.header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if len(self.connections) >= limits.max_connections:
                self.refused = True
                self.transport = transport  # type: ignore[assignment]
                transport.close()
                on_refusal("connection_limit")
                return
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if not self.refused:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.refused or self.transport.is_closing():
                return
            if self.reading_headers:
                self.header_bytes += self._head_part(data)
                if self.header_bytes > limits.max_header_bytes:
                    self._cut("headers_too_large", too_large)
                    return
            super().data_received(data)

        def _head_part(self, data: bytes) -> int:
            """How many bytes of ``data`` belong to the request line and headers."""
            seen = self.header_tail + data
            end = seen.find(HEADERS_END)
            self.header_tail = seen[-(len(HEADERS_END) - 1) :]
            if end < 0:
                return len(data)
            return max(end + len(HEADERS_END) - (len(seen) - len(data)), 0)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.reading_headers = True
            self._arm()  # a keep-alive connection's next request (armed already on a new one)

        def on_headers_complete(self) -> None:
            self._disarm()
            self.reading_headers = False
            reply = (
                None if early is None else early(self.parser.get_method(), self.url, self.headers)
            )
            if reply is None:
                super().on_headers_complete()
            elif self._can_write_now():
                headers = [*self.server_state.default_headers, *reply.headers]  # date, server
                self.transport.write(raw_response(reply.status, headers, reply.body))
                reply.sent()
                self._arm()  # bounds the unread body and the next request's head
            else:
                stack, self.app = self.app, reply_app(reply)  # uvicorn's task runs self.app
                try:
                    super().on_headers_complete()
                finally:
                    self.app = stack

        def _can_write_now(self) -> bool:
            """Whether a reply may go straight to the socket: the last response is complete
            (so the parser skips this request's body), none waits behind it, and the
            connection stays open."""
            return (
                self.cycle is not None
                and self.cycle.response_complete
                and not self.pipeline
                and self.parser.get_http_version() == "1.1"
                and self.parser.should_keep_alive()
            )

        def on_message_complete(self) -> None:
            super().on_message_complete()
            # Whatever comes next on this connection is the head of a new request.
            self.reading_headers = True
            self.header_bytes = 0
            self.header_tail = b""

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle.response_complete and self.cycle.more_body:
                # Answered before its body was read (a refusal): uvicorn's parser discards the
                # rest, and the keep-alive timer restarts on every byte, so bound it here: the
                # rest of the body and the next request's head get the header timeout.
                self._arm()

        def _arm(self) -> None:
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(limits.header_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _expired(self) -> None:
            self.header_timer = None
            if not self.transport.is_closing():
                # A 408 only if part of a new request's head came; a connection that sent
                # nothing, or only an answered request's unread body, is just closed.
                started = self.reading_headers and self.header_bytes > 0
                self._cut("header_timeout", too_slow if started else b"")

        def _cut(self, reason: str, reply: bytes) -> None:
            self._disarm()
            if reply:
                self.transport.write(reply)
            self.transport.close()
            on_refusal(reason)

    return GuardedHttpToolsProtocol
