"""``POST /v1/precise``: greedy for one sample; for N, one engine request of n=N and a vote.

The ``<name>:precise`` aliases on the OpenAI routes take the same path through
``server.serving`` (``plan`` picks the precise surface from the model name).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server.api.deps import ServingEngine, state
from server.api.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.api.routes.respond import respond
from server.serving import plan, route_mode, serve
from server.wire.precise import PreciseAnswer, PreciseRequest

router = APIRouter(prefix="/v1", tags=["quorum"])


@router.post(
    "/precise", response_model=PreciseAnswer, responses={**ERROR_RESPONSES, **SSE_RESPONSE}
)
async def precise(
    body: PreciseRequest, request: Request, engine: ServingEngine
) -> BaseModel | StreamingResponse:
    """Precise mode: the answer with its evidence (votes, samples, receipt)."""
    settings = state(request).settings
    mode = route_mode("precise", body.model, settings.model_name)
    return respond(await serve(plan(body, mode, settings), engine))
