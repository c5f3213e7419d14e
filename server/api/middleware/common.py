"""What the middleware share: the public paths, the per-request record, and error replies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope, Send

from server.errors import QuorumError

# Paths that need no key and are never drained or counted as work: probes, metrics, the schema.
# Everything else (every /v1 route, aliases, unknown paths) is protected: deny by default.
PUBLIC_PATHS = frozenset(
    {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
# The playground's static files (server/api/playground) hold no secret and need no key; the API
# calls the page makes carry the key the person types, like any client's. Public too.
PLAYGROUND_PATHS = frozenset(
    {
        "/playground",
        *(f"/playground/{name}" for name in ("app.js", "api.js", "vote.js", "style.css")),
    }
)
PUBLIC_PATHS |= PLAYGROUND_PATHS
RECORD_KEY = "quorum.record"


@dataclass
class RequestRecord:
    """What the layers learn about a request, read once by the observing middleware."""

    request_id: str
    mode: str = "none"
    samples: int = 0
    rejected: str | None = None
    aborted: str | None = None


def record_of(scope: Scope) -> RequestRecord | None:
    """The request's record, if the observing middleware made one."""
    record = scope.get(RECORD_KEY)
    return record if isinstance(record, RequestRecord) else None


def is_public(scope: Scope) -> bool:
    """Whether the ASGI path (never the Host header or the raw target) is a public one."""
    return str(scope.get("path", "")) in PUBLIC_PATHS


def error_reply(
    error: QuorumError, *, close: bool = False, extra: dict[str, str] | None = None
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """An OpenAI error reply's headers and body, for a middleware or the early refusal."""
    body = json.dumps(error.body()).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    for name, value in {**error.headers, **(extra or {})}.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    if close:
        headers.append((b"connection", b"close"))
    return headers, body


async def send_error(
    send: Send, error: QuorumError, *, close: bool = False, extra: dict[str, str] | None = None
) -> None:
    """Reply with an OpenAI error body from inside a middleware."""
    headers, body = error_reply(error, close=close, extra=extra)
    start: dict[str, Any] = {"type": "http.response.start", "status": error.status}
    start["headers"] = headers
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def header_in(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of a header (name in lower case) in an ASGI header list."""
    for key, value in headers:
        if key == name:
            return bytes(value)
    return None


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (name in lower case)."""
    return header_in(scope.get("headers", ()), name)
