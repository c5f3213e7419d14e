"""Upstream failures translated into Quorum errors, with whether the replica is to blame.

The upstream's 4xx are the client's (its message passes through); a reset, a refusal or a 5xx is
the replica's, which then leaves rotation until the health checker sees it recover.
"""

from __future__ import annotations

from typing import Any

import httpx

from server.errors import InvalidRequest, Overloaded, QuorumError, UpstreamFailed, UpstreamTimeout

MAX_UPSTREAM_MESSAGE_CHARS = 1000
Verdict = tuple[QuorumError, bool]


def error_fields(payload: Any) -> tuple[str, str | None]:
    """The message and param of an OpenAI (or FastAPI) error body."""
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or str(error)
            param = error.get("param")
            return str(message), str(param) if param is not None else None
        if isinstance(error, str):
            return error, None
    return str(payload), None


def status_error(status: int, payload: Any, retry_after: str | None = None) -> Verdict:
    """An upstream error status as ours, and whether the replica is to blame."""
    message, param = error_fields(payload)
    message = message[:MAX_UPSTREAM_MESSAGE_CHARS]
    if status in (400, 413, 422):
        return InvalidRequest(message, param=param), False
    if status == 429:
        headers = {"Retry-After": retry_after} if retry_after else None
        return Overloaded(message, headers=headers), False
    if status in (408, 504):
        return UpstreamTimeout(f"upstream timeout: {message}"), False
    if status in (401, 403):
        return UpstreamFailed("the upstream refused Quorum's key (upstream_api_key)"), False
    return UpstreamFailed(f"upstream error {status}: {message}"), True


def transport_error(exc: httpx.HTTPError) -> Verdict:
    """A failure after the request was sent: 504 for a timeout, else 502; never retried."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"the upstream did not answer in time ({type(exc).__name__})"), False
    return (
        UpstreamFailed(
            f"the upstream replica failed during the request ({type(exc).__name__}); "
            "later requests go to a healthy replica"
        ),
        True,
    )


def response_json(response: httpx.Response) -> Any:
    """The body as JSON, or an error body holding its text."""
    try:
        return response.json()
    except ValueError:
        return {"error": {"message": response.text[:500] or response.reason_phrase}}
