"""The OpenAI drop-in: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``.

Each handler reads as the request's path: plan (mode from the model name, every cap checked)
-> serve on the engine -> respond (whole, or streamed as SSE).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server.api.deps import ServingEngine, state
from server.api.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.api.routes.respond import respond
from server.serving import plan, resolve_mode, serve
from server.wire.chat import ChatCompletion, ChatCompletionRequest
from server.wire.common import ModelCard, ModelList
from server.wire.completions import Completion, CompletionRequest

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """The served model and its mode aliases."""
    current = state(request)
    name = current.settings.model_name
    return ModelList(
        data=[
            ModelCard(id=model_id, created=current.created)
            for model_id in (name, f"{name}:creative", f"{name}:precise")
        ]
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={**ERROR_RESPONSES, **SSE_RESPONSE},
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, engine: ServingEngine
) -> BaseModel | StreamingResponse:
    """OpenAI chat completions; the model name picks the mode."""
    settings = state(request).settings
    mode = resolve_mode(body.model, settings.model_name)
    return respond(await serve(plan(body, mode, settings), engine))


@router.post(
    "/completions", response_model=Completion, responses={**ERROR_RESPONSES, **SSE_RESPONSE}
)
async def completions(
    body: CompletionRequest, request: Request, engine: ServingEngine
) -> BaseModel | StreamingResponse:
    """OpenAI legacy completions for one prompt or a list of prompts."""
    settings = state(request).settings
    mode = resolve_mode(body.model, settings.model_name)
    return respond(await serve(plan(body, mode, settings), engine))
