"""Where every exception becomes OpenAI's error body, and a schema that says so.

Quorum's own errors render as themselves; FastAPI's 422 becomes OpenAI's 400 naming the field;
Starlette's 404/405 and bad bodies keep their status; anything unexpected is logged and
answered 500 without a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import EngineFailed, InvalidRequest, MethodNotAllowed, NotFound, QuorumError

log = logging.getLogger(__name__)
MAX_VALIDATION_ERRORS_SHOWN = 3


def error_response(exc: QuorumError) -> JSONResponse:
    """Render any Quorum error as OpenAI's error body with its status."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """FastAPI's 422 becomes OpenAI's 400, naming the first bad field, bounded in size."""
    errors = list(exc.errors())
    param = None
    parts = []
    for error in errors[:MAX_VALIDATION_ERRORS_SHOWN]:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        param = param or where
        parts.append(f"{where}: {str(error.get('msg', 'invalid'))[:200]}")
    more = len(errors) - MAX_VALIDATION_ERRORS_SHOWN
    message = "; ".join(parts) + (f" (and {more} more errors)" if more > 0 else "")
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
    return EngineFailed("internal server error")


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
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(EngineFailed("internal server error"))


class QuorumAPI(FastAPI):
    """FastAPI whose schema tells the truth about validation: 400 with OpenAI's error body."""

    def openapi(self) -> dict[str, Any]:
        """The schema without FastAPI's 422 responses, which this server never sends."""
        if self.openapi_schema is None:
            schema = super().openapi()
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return self.openapi_schema or {}
