"""``POST /v1/creative``: a chat-completions body served with creative sampling defaults."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from server.errors import InvalidRequest
from server.plan import resolve_mode
from server.routes.deps import ServingEngine, state
from server.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.routes.openai import run_chat
from server.wire.chat import ChatCompletion, ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["quorum"])


@router.post(
    "/creative", response_model=ChatCompletion, responses={**ERROR_RESPONSES, **SSE_RESPONSE}
)
async def creative(
    body: ChatCompletionRequest,
    request: Request,
    engine: ServingEngine,
) -> ChatCompletion | StreamingResponse:
    """Sampling for diversity: unset temperature, top_p and presence_penalty get creative
    defaults (see ``decoding.creative``); ``n`` variants; ``seed`` honoured."""
    settings = state(request).settings
    if resolve_mode(body.model, settings.model_name, default="creative") != "creative":
        raise InvalidRequest("/v1/creative serves only the creative mode", param="model")
    return await run_chat(body, "creative", engine, settings)
