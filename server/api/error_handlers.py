"""Where every exception becomes OpenAI's error body (``server.api.contract`` makes the schema
say so).

Quorum's own errors render as themselves; FastAPI's 422 becomes OpenAI's 400 naming the field;
Starlette's 404/405 and bad bodies keep their status; anything unexpected is a bug, logged with
the request id and answered 500 ``internal_error`` without a stack trace (the inference routes
catch theirs earlier, in ``server.api.route``; this handler is the last resort).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.api.middleware.common import record_of
from server.errors import InternalError, InvalidRequest, MethodNotAllowed, NotFound, QuorumError

log = logging.getLogger(__name__)
MAX_VALIDATION_ERRORS_SHOWN = 3
MAX_VALIDATION_ERRORS_READ = 50  # a 100,000-item list may fail 100,000 times


def error_response(exc: QuorumError) -> JSONResponse:
    """Render any Quorum error as OpenAI's error body with its status."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


# pydantic names the union member it tried in an error's location ("stop.constrained-str",
# "content.list[TextPart].0"); a client's path has only keys and indexes.
_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "bytes", "none", "list", "dict"})


def _path_part(part: object) -> bool:
    if isinstance(part, int):
        return True
    text = str(part)
    return text != "body" and text.isidentifier() and text not in _TYPE_NAMES


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """FastAPI's 422 becomes OpenAI's 400, naming the first bad field by its path in the body
    (union members left out), bounded in size."""
    errors = list(exc.errors())
    param = None
    parts: list[str] = []
    for error in errors[:MAX_VALIDATION_ERRORS_READ]:
        where = ".".join(str(p) for p in error.get("loc", ()) if _path_part(p)) or "body"
        param = param or where
        part = f"{where}: {str(error.get('msg', 'invalid'))[:200]}"
        if part not in parts:
            parts.append(part)
    shown = parts[:MAX_VALIDATION_ERRORS_SHOWN]
    more = len(parts) + max(len(errors) - MAX_VALIDATION_ERRORS_READ, 0) - len(shown)
    message = "; ".join(shown) + (f" (and {more} more errors)" if more > 0 else "")
    return InvalidRequest(message or "invalid request body", param=param)


def http_error(exc: StarletteHTTPException) -> QuorumError:
    """Starlette's own errors (unknown route, wrong method, bad JSON) as OpenAI errors."""
    if exc.status_code == 404:
        return NotFound("no such route")
    if exc.status_code == 405:
        return MethodNotAllowed("method not allowed on this route", headers=dict(exc.headers or {}))
    if 400 <= exc.status_code < 500:
        error = InvalidRequest(str(exc.detail)[:500])
        error.status = exc.status_code  # type: ignore[misc]
        return error
    return InternalError("internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """One place where every exception becomes an OpenAI-shaped response."""

    @app.exception_handler(QuorumError)
    async def _quorum(_: Request, exc: QuorumError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(http_error(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        record = record_of(request.scope)
        request_id = record.request_id if record is not None else None
        log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
        return error_response(InternalError("internal server error"))
