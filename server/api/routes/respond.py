"""The last step of every route: a served plan becomes an HTTP response."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from server.serving import Served, sse
from server.wire.text import json_text


def respond(served: Served) -> Response:
    """A wire model as JSON, or SSE events ending with ``[DONE]`` (errors mid-stream become
    an SSE error event). Both are rendered by ``json_text``, so model output that is not
    valid Unicode is replaced rather than failing the response."""
    if isinstance(served, BaseModel):
        return Response(json_text(served), media_type="application/json")
    events: AsyncIterator[str] = served
    return StreamingResponse(sse.with_done(events), media_type="text/event-stream")
