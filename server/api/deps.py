"""What route handlers need from the app, looked up per request (no import-time globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from decoding.engine import ManagedEngine
from decoding.judge import Judge
from server.errors import EngineUnavailable
from server.runtime.lifecycle import Lifecycle
from server.runtime.settings import Settings


@dataclass
class ServerState:
    """The app's live state: settings, the engine, its lifecycle, the judge that bounds answer
    judging, and when it was created."""

    settings: Settings
    engine: ManagedEngine
    lifecycle: Lifecycle
    judge: Judge
    created: int = 0


def state(request: Request) -> ServerState:
    """The server state of the app handling this request."""
    server_state: ServerState = request.app.state.quorum
    return server_state


def serving_engine(request: Request) -> ManagedEngine:
    """The engine, or 503 while it is starting or draining."""
    current = state(request)
    if not current.lifecycle.serving:
        raise EngineUnavailable("the server is not ready to serve requests")
    return current.engine


ServingEngine = Annotated[ManagedEngine, Depends(serving_engine)]
