"""``create_app(settings, engine)``: the FastAPI app, its lifespan and its error rendering."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, runtime_checkable

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from decoding.engine import Engine
from server import metrics as metrics_route
from server.admission import Admission, admit
from server.errors import (
    EngineFailed,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    QuorumError,
)
from server.lifecycle import Lifecycle, watch_engine
from server.metrics import Metrics
from server.middleware import install_middleware
from server.routes import creative, health, openai, precise
from server.routes.deps import ServerState
from server.settings import Settings

log = logging.getLogger(__name__)
MAX_VALIDATION_ERRORS_SHOWN = 3


@runtime_checkable
class ManagedEngine(Protocol):
    """An engine whose resources the app's lifespan owns."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


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


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """Build the app around an engine; the lifespan starts and stops it if it is managed."""
    server_state = ServerState(settings=settings, engine=engine, created=int(time.time()))
    lifecycle = Lifecycle(server_state)
    metrics = Metrics()
    admission = Admission(settings.max_inflight_samples)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lifecycle.start()  # before the engine: a SIGTERM during its start must hold
        if isinstance(engine, ManagedEngine):
            await engine.start()
        server_state.ready = True
        watchdog = asyncio.create_task(watch_engine(engine, lifecycle))
        log.info("ready", extra={"model": settings.model_name})
        try:
            yield {}
        finally:
            watchdog.cancel()
            server_state.draining = True
            if isinstance(engine, ManagedEngine):
                await engine.stop()

    app = QuorumAPI(
        title="Quorum",
        summary="Inference-time reliability: precise answers by vote, creative sampling, "
        "and an OpenAI-compatible API over vLLM.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(admit)],
    )
    app.state.quorum = server_state
    app.state.lifecycle = lifecycle
    app.state.metrics = metrics
    app.state.admission = admission
    metrics.watch(
        admitted=lambda: admission.in_use,
        capacity=admission.capacity,
        engine_active=lambda: float(getattr(engine, "active", math.nan)),
        ready=lambda: float(server_state.ready and not server_state.draining),
    )
    install_error_handlers(app)
    install_middleware(app, settings, lifecycle, metrics)
    app.include_router(metrics_route.router)
    app.include_router(health.router)
    app.include_router(openai.router)
    app.include_router(creative.router)
    app.include_router(precise.router)
    return app
