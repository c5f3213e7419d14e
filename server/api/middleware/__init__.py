"""The ASGI layers around the app, outermost first:

ObserveMiddleware    request id, metrics, one access-log line (sees every outcome)
CORSMiddleware       only when origins are configured; never credentials
AuthMiddleware       401 without a valid bearer key (ASGI path, deny by default)
InflightMiddleware   503 while draining; abort on disconnect, timeout or shutdown
AdmissionMiddleware  429 when full, before the body is read; else read it once, weigh, admit
BodyLimitMiddleware  413 (too large) or 408 (stalled) before any parsing, on every route
(app)

Connection-level bounds (header timeout and size, keep-alive, connection cap) live below the
app, in uvicorn's protocol: ``server.runtime.connections``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from server.api.middleware.admission import AdmissionMiddleware
from server.api.middleware.auth import AuthMiddleware
from server.api.middleware.body_limit import BodyLimitMiddleware
from server.api.middleware.inflight import InflightMiddleware
from server.api.middleware.observe import ObserveMiddleware
from server.runtime.admission import Admission
from server.runtime.lifecycle import Lifecycle
from server.runtime.metrics import Metrics
from server.runtime.settings import Settings

__all__ = [
    "AdmissionMiddleware",
    "AuthMiddleware",
    "BodyLimitMiddleware",
    "InflightMiddleware",
    "ObserveMiddleware",
    "install_middleware",
]


def install_middleware(
    app: FastAPI,
    settings: Settings,
    lifecycle: Lifecycle,
    metrics: Metrics,
    admission: Admission,
) -> None:
    """Wrap the app in its layers (``add_middleware`` puts each new one outside the last)."""
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.max_body_bytes, stall_timeout_s=settings.body_timeout_s
    )
    app.add_middleware(AdmissionMiddleware, admission=admission, settings=settings)
    app.add_middleware(
        InflightMiddleware, lifecycle=lifecycle, timeout_s=settings.request_timeout_s
    )
    app.add_middleware(AuthMiddleware, keys=settings.api_keys)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,  # bearer keys travel in a header, never as cookies
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "retry-after"],
        )
    app.add_middleware(ObserveMiddleware, metrics=metrics, routes=app.router.routes)
