"""``POST /v1/creative``: a chat-completions body served with creative sampling defaults."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server.api.deps import ServingEngine, state
from server.api.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.api.routes.respond import respond
from server.serving import plan, route_mode, serve
from server.wire.chat import ChatCompletion, ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["quorum"])


@router.post(
    "/creative", response_model=ChatCompletion, responses={**ERROR_RESPONSES, **SSE_RESPONSE}
)
async def creative(
    body: ChatCompletionRequest, request: Request, engine: ServingEngine
) -> BaseModel | StreamingResponse:
    """Sampling for diversity: unset temperature, top_p and presence_penalty get creative
    defaults (see ``decoding.creative``); ``n`` variants; ``seed`` honoured."""
    settings = state(request).settings
    mode = route_mode("creative", body.model, settings.model_name)
    return respond(await serve(plan(body, mode, settings), engine))
