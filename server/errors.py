"""Errors the server raises, and the one renderer that turns them into OpenAI error bodies.

    QuorumError                 500 server_error
    ├── InvalidRequest          400 invalid_request_error   (bad field, context overflow)
    ├── AuthenticationFailed    401 authentication_error
    ├── ModelNotFound           404 invalid_request_error   code=model_not_found
    ├── NotFound                404 invalid_request_error   (unknown route)
    ├── MethodNotAllowed        405 invalid_request_error
    ├── PayloadTooLarge         413 invalid_request_error
    ├── Overloaded              429 rate_limit_error        (with Retry-After)
    ├── EngineUnavailable       503 server_error            (starting, draining, dead)
    ├── RequestTimedOut         504 server_error            (server-side request timeout)
    └── EngineFailed            500 server_error            (engine error mid-request)
        ├── UpstreamFailed      502 server_error            (replica failed or unreachable)
        └── UpstreamTimeout     504 server_error            (replica too slow)

Foreign exceptions (vLLM, httpx, pydantic) are translated where they are caught.
"""

from __future__ import annotations

from typing import Any, ClassVar

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

    def body(self) -> dict[str, Any]:
        """The OpenAI error body, with a message bounded in size."""
        message = self.message
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        return {
            "error": {
                "message": message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(QuorumError):
    """The request is malformed or asks for something outside the limits."""

    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(QuorumError):
    """No API key, or a wrong one."""

    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class ModelNotFound(QuorumError):
    """The request names a model this server does not serve."""

    status = 404
    type = "invalid_request_error"
    default_code = "model_not_found"


class NotFound(QuorumError):
    """No such route."""

    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(QuorumError):
    """The route exists but not with this method."""

    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLarge(QuorumError):
    """The body is larger than the configured limit."""

    status = 413
    type = "invalid_request_error"
    default_code = "payload_too_large"


class Overloaded(QuorumError):
    """Too much work is running or queued; retry later."""

    status = 429
    type = "rate_limit_error"
    default_code = "overloaded"


class EngineUnavailable(QuorumError):
    """The engine is not ready (starting, draining or dead)."""

    status = 503
    type = "server_error"
    default_code = "engine_unavailable"


class RequestTimedOut(QuorumError):
    """The request ran past the server's request timeout; its engine work was aborted."""

    status = 504
    type = "server_error"
    default_code = "timeout"


class EngineFailed(QuorumError):
    """The engine failed while serving this request."""

    status = 500
    type = "server_error"
    default_code = "engine_error"


class UpstreamFailed(EngineFailed):
    """An upstream replica failed, reset or refused the request (the scale-out engine)."""

    status = 502
    default_code = "upstream_error"


class UpstreamTimeout(EngineFailed):
    """An upstream replica did not answer within the configured timeout."""

    status = 504
    default_code = "upstream_timeout"


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
