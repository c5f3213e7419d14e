"""The inference routes: the OpenAI drop-in and Quorum's two mode routes.

Every one is the same three steps, in ``answer``: plan (the mode from the route or the model
name; every cap checked before the first byte) -> serve on the engine -> respond (whole, or
streamed as SSE). The routes differ only in their path, body, response and how the mode is
picked, which the table below states. Their bodies are parsed by ``StrictJsonRoute``.

| route                      | body                      | mode                           |
| -------------------------- | ------------------------- | ------------------------------ |
| ``/v1/chat/completions``   | ``ChatCompletionRequest`` | from the model name            |
| ``/v1/completions``        | ``CompletionRequest``     | from the model name            |
| ``/v1/creative``           | ``CreativeRequest``       | creative                       |
| ``/v1/precise``            | ``PreciseRequest``        | precise                        |
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api.deps import ServingEngine, state
from server.api.route import StrictJsonRoute
from server.api.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.api.routes.respond import respond
from server.serving import Mode, RequestBody, plan, resolve_mode, route_mode, serve
from server.wire.chat import ChatCompletion, ChatCompletionRequest, CreativeRequest
from server.wire.completions import Completion, CompletionRequest
from server.wire.precise import PreciseAnswer, PreciseRequest

router = APIRouter(prefix="/v1", route_class=StrictJsonRoute)
RESPONSES = {**ERROR_RESPONSES, **SSE_RESPONSE}
Answer = Response


async def answer(
    body: RequestBody,
    request: Request,
    engine: ServingEngine,
    route: Literal["creative", "precise"] | None = None,
) -> Answer:
    """Plan -> serve -> respond; ``route`` fixes the mode, else the model name picks it."""
    current = state(request)
    settings = current.settings
    if route is None:
        mode: Mode = resolve_mode(body.model, settings.model_name)
    else:
        mode = route_mode(route, body.model, settings.model_name)
    return respond(await serve(plan(body, mode, settings), engine, current.judge))


@router.post(
    "/chat/completions", response_model=ChatCompletion, responses=RESPONSES, tags=["openai"]
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, engine: ServingEngine
) -> Answer:
    """OpenAI chat completions; the model name picks the mode (``<name>:precise`` votes)."""
    return await answer(body, request, engine)


@router.post("/completions", response_model=Completion, responses=RESPONSES, tags=["openai"])
async def completions(body: CompletionRequest, request: Request, engine: ServingEngine) -> Answer:
    """OpenAI legacy completions for one prompt or a list of prompts."""
    return await answer(body, request, engine)


@router.post("/creative", response_model=ChatCompletion, responses=RESPONSES, tags=["quorum"])
async def creative(body: CreativeRequest, request: Request, engine: ServingEngine) -> Answer:
    """Sampling for diversity: unset temperature, top_p and presence_penalty get creative
    defaults (see ``decoding.creative``); ``n`` variants; ``seed`` honoured."""
    return await answer(body, request, engine, "creative")


@router.post("/precise", response_model=PreciseAnswer, responses=RESPONSES, tags=["quorum"])
async def precise(body: PreciseRequest, request: Request, engine: ServingEngine) -> Answer:
    """Precise mode: greedy for one sample; for N, one engine request of n=N and a vote over
    the extracted answers, with the evidence (votes, samples, receipt)."""
    return await answer(body, request, engine, "precise")
