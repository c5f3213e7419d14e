"""Errors the server raises, and the one renderer that turns them into OpenAI error bodies.

    QuorumError                 500 server_error
    ├── InvalidRequest          400 invalid_request_error   (bad field, context overflow)
    ├── AuthenticationFailed    401 authentication_error
    ├── ModelNotFound           404 invalid_request_error   code=model_not_found
    ├── NotFound                404 invalid_request_error   (unknown route)
    ├── MethodNotAllowed        405 invalid_request_error
    ├── ClientTooSlow           408 invalid_request_error   (headers or body not sent in time)
    ├── PayloadTooLarge         413 invalid_request_error
    ├── HeadersTooLarge         431 invalid_request_error
    ├── Overloaded              429 rate_limit_error        (with Retry-After)
    ├── EngineUnavailable       503 server_error            (starting, draining, dead)
    ├── RequestTimedOut         504 server_error            (server-side request timeout)
    ├── InternalError           500 server_error            code=internal_error (a bug here)
    └── EngineFailed            500 server_error            (engine error mid-request)
        ├── UpstreamFailed      502 server_error            (replica failed or unreachable)
        └── UpstreamTimeout     504 server_error            (replica too slow)

Foreign exceptions (vLLM, httpx, pydantic) are translated where they are caught; anything else
is a bug, logged with the request id and answered ``InternalError`` without internals.
"""

from __future__ import annotations

from typing import Any, ClassVar

from server.wire.text import replace_lone_surrogates

MAX_MESSAGE_CHARS = 2000


class QuorumError(Exception):
    """Base of every error the server reports to a client."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}

    def __init_subclass__(
        cls, *, status: int | None = None, type: str | None = None, code: str | None = None
    ) -> None:
        """Each subclass states its status, OpenAI type and code in its class line."""
        super().__init_subclass__()
        cls.status = status if status is not None else cls.status
        cls.type = type if type is not None else cls.type
        cls.default_code = code if code is not None else cls.default_code

    def body(self) -> dict[str, Any]:
        """The OpenAI error body, with a message bounded in size and encodable as UTF-8 (it
        may quote an upstream's or a client's text)."""
        message = replace_lone_surrogates(self.message)
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        param = None if self.param is None else replace_lone_surrogates(self.param)
        return {
            "error": {
                "message": message,
                "type": self.type,
                "param": param,
                "code": self.code,
            }
        }


class InvalidRequest(QuorumError, status=400, type="invalid_request_error"):
    """The request is malformed or asks for something outside the limits."""


class AuthenticationFailed(
    QuorumError, status=401, type="authentication_error", code="invalid_api_key"
):
    """No API key, or a wrong one."""


class ModelNotFound(QuorumError, status=404, type="invalid_request_error", code="model_not_found"):
    """The request names a model this server does not serve."""


class NotFound(QuorumError, status=404, type="invalid_request_error", code="not_found"):
    """No such route."""


class MethodNotAllowed(
    QuorumError, status=405, type="invalid_request_error", code="method_not_allowed"
):
    """The route exists but not with this method."""


class PayloadTooLarge(
    QuorumError, status=413, type="invalid_request_error", code="payload_too_large"
):
    """The body is larger than the configured limit."""


class ClientTooSlow(QuorumError, status=408, type="invalid_request_error", code="request_timeout"):
    """The client stopped sending its request (headers or body) for too long."""


class HeadersTooLarge(
    QuorumError, status=431, type="invalid_request_error", code="headers_too_large"
):
    """The request line and headers are larger than the configured limit."""


class Overloaded(QuorumError, status=429, type="rate_limit_error", code="overloaded"):
    """Too much work is running or queued; retry later."""


class EngineUnavailable(QuorumError, status=503, type="server_error", code="engine_unavailable"):
    """The engine is not ready (starting, draining or dead)."""


class RequestTimedOut(QuorumError, status=504, type="server_error", code="timeout"):
    """The request ran past the server's request timeout; its engine work was aborted."""


class InternalError(QuorumError, status=500, type="server_error", code="internal_error"):
    """An unexpected error in the server itself (a bug), not the engine's and not the client's."""


class EngineFailed(QuorumError, status=500, type="server_error", code="engine_error"):
    """The engine failed while serving this request."""


class UpstreamFailed(EngineFailed, status=502, code="upstream_error"):
    """An upstream replica failed, reset or refused the request (the scale-out engine)."""


class UpstreamTimeout(EngineFailed, status=504, code="upstream_timeout"):
    """An upstream replica did not answer within the configured timeout."""


def context_overflow(limit: int, prompt_tokens: int, max_tokens: int) -> InvalidRequest:
    """The 400 for a prompt plus ``max_tokens`` past the context, the same from every engine
    (vLLM's own server would silently shorten ``max_tokens`` instead)."""
    return InvalidRequest(
        f"This model's maximum context length is {limit} tokens. However, you requested "
        f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, {max_tokens} for "
        "the completion, max_tokens). Reduce the prompt or max_tokens.",
        param="max_tokens",
        code="context_length_exceeded",
    )
