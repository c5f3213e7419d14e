"""What route handlers need from the app, looked up per request (no import-time globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from decoding.engine import Engine
from server.errors import EngineUnavailable
from server.settings import Settings


@dataclass
class ServerState:
    """The app's live state: settings, the engine, and whether it is ready to serve."""

    settings: Settings
    engine: Engine
    ready: bool = False
    draining: bool = False
    created: int = field(default=0)


def state(request: Request) -> ServerState:
    """The server state of the app handling this request."""
    server_state: ServerState = request.app.state.quorum
    return server_state


def serving_engine(request: Request) -> Engine:
    """The engine, or 503 while it is starting or draining."""
    current = state(request)
    if not current.ready or current.draining:
        raise EngineUnavailable("the server is not ready to serve requests")
    return current.engine


ServingEngine = Annotated[Engine, Depends(serving_engine)]
