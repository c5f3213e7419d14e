"""Liveness and readiness, kept apart so orchestrators restart only what is broken."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.deps import state

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Liveness: 200 while the process and its engine work, 503 once the engine has died."""
    if state(request).engine.errored:
        return JSONResponse({"status": "engine_dead"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 once the model is loaded and warmed, 503 while starting or draining, or
    while the engine cannot take work (behind ``--upstream``: no replica is healthy)."""
    current = state(request)
    if current.lifecycle.serving and current.engine.ready:
        return JSONResponse({"status": "ready", "model": current.settings.model_name})
    if current.lifecycle.draining:
        status = "draining"
    elif current.lifecycle.ready:
        status = "engine_unavailable"
    else:
        status = "starting"
    return JSONResponse({"status": status}, 503)
