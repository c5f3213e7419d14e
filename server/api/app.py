"""``create_app(settings, engine)``: the FastAPI app, its lifespan, layers and routes.

The lifespan owns the process's resources: the judge pool (worker processes that judge answers
in bounds) and the code runner (workers that run code candidates in a sandbox) start before
the engine and the server is ready only once both are up; at shutdown
the engine stops, then every judge worker is killed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from decoding.engine import ManagedEngine
from server import __version__
from server.api.contract import QuorumAPI
from server.api.deps import ServerState
from server.api.error_handlers import install_error_handlers
from server.api.middleware import install_middleware
from server.api.middleware.early_refusal import EarlyRefusal
from server.api.routes import health, inference, metrics, models, playground
from server.runtime.admission import Admission
from server.runtime.judge_pool import answer_judge
from server.runtime.lifecycle import Lifecycle, watch_engine
from server.runtime.metrics import Metrics
from server.runtime.settings import Settings
from server.runtime.verifier import SandboxVerifier, code_runner

log = logging.getLogger(__name__)


def create_app(settings: Settings, engine: ManagedEngine) -> FastAPI:
    """Build the app around an engine; the lifespan starts and stops it."""
    lifecycle = Lifecycle()
    judge = answer_judge(settings)
    runner = code_runner(settings)  # verified voting's code candidates, each in a sandbox
    verifier = SandboxVerifier(runner, judge, settings)
    server_state = ServerState(
        settings, engine, lifecycle, judge, created=int(time.time()), verifier=verifier
    )
    registry = Metrics()
    admission = Admission(settings.max_inflight_samples)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lifecycle.start()  # before the engine: a SIGTERM during its start must hold
        await judge.start()
        await runner.start()
        try:
            await engine.start()
            # What start-up allocated (vLLM, torch, transformers: ~600k objects) lives as long
            # as the process: leave it out of the collector's full passes, which otherwise stop
            # the event loop for 0.3-3 s each (bench/README.md). vLLM's own server does the same.
            gc.collect()
            gc.freeze()
            lifecycle.ready = True
            watchdog = asyncio.create_task(watch_engine(engine, lifecycle))
            log.info("ready", extra={"model": settings.model_name})
            try:
                yield {}
            finally:
                watchdog.cancel()
                lifecycle.draining = True
                await engine.stop()
        finally:
            await runner.stop()  # kills every sandbox still running
            await judge.stop()  # kills whatever judging is still running
            early.flush()

    app = QuorumAPI(
        settings,
        title="Quorum",
        summary="Inference-time reliability: precise answers by vote, creative sampling, "
        "and an OpenAI-compatible API over vLLM.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.quorum = server_state
    app.state.lifecycle = lifecycle
    app.state.metrics = registry
    app.state.admission = admission
    app.state.judge = judge
    registry.watch(
        admitted=lambda: admission.in_use,
        capacity=admission.capacity,
        engine_active=lambda: engine.active,
        ready=lambda: float(lifecycle.serving and engine.ready),
    )
    install_error_handlers(app)
    install_middleware(app, settings, lifecycle, registry, admission)
    for module in (metrics, health, models, inference):
        app.include_router(module.router)
    if settings.playground:
        app.include_router(playground.build_router())
    # Asked by the connection protocol before the stack above runs (server.runtime.serve).
    early = EarlyRefusal(settings, lifecycle, admission, registry, app.router.routes)
    app.state.early_refusal = early  # the lifespan above runs later, so it sees this too
    return app
