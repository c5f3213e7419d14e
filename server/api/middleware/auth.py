"""Bearer-key auth on the ASGI path, deny by default, keys compared in constant time.

The check reads ``scope["path"]`` (already percent-decoded by the server, never the Host header
or the raw request target) and lets through only the exact public paths; everything else,
including unknown and oddly spelled paths (``//v1``, ``/V1``, ``/v1/%6dodels``), needs a key.
Keys are compared as SHA-256 digests with ``hmac.compare_digest``, against every configured key
without stopping early, so neither content nor length nor which key matched leaks in timing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.middleware.common import header, is_public, record_of, send_error
from server.errors import AuthenticationFailed

log = logging.getLogger(__name__)


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key if isinstance(key, bytes) else key.encode()).digest()


def bearer_token(value: bytes | None) -> bytes | None:
    """The credential of an ``Authorization: Bearer <token>`` header, or None."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return token


class BearerKeys:
    """The configured keys, as digests; shared by the middleware and the early refusal."""

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        self._digests = [_digest(k.get_secret_value()) for k in keys]

    @property
    def required(self) -> bool:
        """Whether any key is configured (none: the server is open)."""
        return bool(self._digests)

    def accepts(self, token: bytes | None) -> bool:
        """Whether the token is one of the keys (constant time over all keys)."""
        candidate = _digest(token or b"")
        matches = [hmac.compare_digest(candidate, digest) for digest in self._digests]
        return token is not None and any(matches)

    def admit(self, authorization: bytes | None) -> bool:
        """Whether a request with this ``Authorization`` header may pass (always, if open)."""
        return not self.required or self.accepts(bearer_token(authorization))


class AuthMiddleware:
    """401 with an OpenAI error body unless the request carries one of the keys."""

    def __init__(self, app: ASGIApp, keys: Sequence[SecretStr]) -> None:
        self.app = app
        self.keys = BearerKeys(keys)

    def accepts(self, token: bytes | None) -> bool:
        """Whether the token is one of the keys (constant time over all keys)."""
        return self.keys.accepts(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys.required or is_public(scope):
            await self.app(scope, receive, send)
            return
        if self.accepts(bearer_token(header(scope, b"authorization"))):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        if record is not None:
            record.rejected = "unauthenticated"
        if scope["type"] != "http":
            return  # a websocket closes without being accepted
        error = AuthenticationFailed(
            "Missing or incorrect API key. Send it as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await send_error(send, error)
