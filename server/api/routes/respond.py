"""The last step of every route: a served plan becomes an HTTP response."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server.serving import Served, sse


def respond(served: Served) -> BaseModel | StreamingResponse:
    """A wire model as JSON, or SSE events ending with ``[DONE]`` (errors mid-stream become
    an SSE error event)."""
    if isinstance(served, BaseModel):
        return served
    events: AsyncIterator[str] = served
    return StreamingResponse(sse.with_done(events), media_type="text/event-stream")
