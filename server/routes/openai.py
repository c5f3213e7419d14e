"""The OpenAI drop-in: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``.

Each handler reads as the request's path: wire request -> mode and sampling plan -> engine ->
wire response (whole, or streamed as SSE).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from decoding.engine import Engine, TextPrompt
from server import sse
from server.chat_service import (
    chat_prompt,
    complete_chat,
    fingerprint,
    logprobs_requested,
    stream_chat,
)
from server.completion_service import complete_text, stream_text
from server.errors import InvalidRequest
from server.plan import Mode, SamplingRequest, resolve_mode, sampling_spec
from server.routes import precise
from server.routes.deps import ServerState, ServingEngine, state
from server.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.settings import Settings
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


def chat_sampling(request: ChatCompletionRequest) -> SamplingRequest:
    """The sampling fields of a chat body."""
    uses_new_name = request.max_completion_tokens is not None
    return SamplingRequest(
        n=request.n,
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_completion_tokens if uses_new_name else request.max_tokens,
        seed=request.seed,
        stop=request.stop,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        logprobs=logprobs_requested(request),
        max_tokens_param="max_completion_tokens" if uses_new_name else "max_tokens",
    )


async def run_chat(
    body: ChatCompletionRequest, mode: Mode, engine: Engine, settings: Settings
) -> ChatCompletion | StreamingResponse:
    """Serve a chat body in the given mode (shared by the OpenAI and creative routes)."""
    if mode == "precise":
        return await precise.precise_chat(body, engine, settings)
    spec = sampling_spec(
        chat_sampling(body), mode, settings, default_max_tokens=settings.default_max_tokens
    )
    prompt = chat_prompt(body)
    model = body.model or settings.model_name
    if not body.stream:
        return await complete_chat(engine, prompt, spec, model)
    chunks = await sse.primed(engine.generate(prompt, spec, stream=True))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = stream_chat(chunks, spec, model, fingerprint(engine.info), include_usage=include_usage)
    return StreamingResponse(sse.with_done(events), media_type="text/event-stream")


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={**ERROR_RESPONSES, **SSE_RESPONSE},
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    engine: ServingEngine,
) -> ChatCompletion | StreamingResponse:
    """OpenAI chat completions; the model name picks the mode."""
    settings = state(request).settings
    if body.model is None:
        raise InvalidRequest("model is required", param="model")
    mode = resolve_mode(body.model, settings.model_name)
    return await run_chat(body, mode, engine, settings)


@router.post(
    "/completions", response_model=Completion, responses={**ERROR_RESPONSES, **SSE_RESPONSE}
)
async def completions(
    body: CompletionRequest,
    request: Request,
    engine: ServingEngine,
) -> Completion | StreamingResponse:
    """OpenAI legacy completions for one prompt or a list of prompts."""
    current: ServerState = state(request)
    settings = current.settings
    mode = resolve_mode(body.model, settings.model_name)
    if mode == "precise":
        return await precise.precise_completion(body, engine, settings)
    if body.suffix:
        raise InvalidRequest("suffix is not supported", param="suffix")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not prompts:
        raise InvalidRequest("prompt must not be empty", param="prompt")
    sampling = SamplingRequest(
        n=body.n,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        seed=body.seed,
        stop=body.stop,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logprobs=body.logprobs,
    )
    spec = sampling_spec(sampling, mode, settings, default_max_tokens=16)
    if len(prompts) * spec.n > settings.max_n:
        raise InvalidRequest(
            f"prompts x n must be at most {settings.max_n}, got {len(prompts) * spec.n}",
            param="prompt",
        )
    if not body.stream:
        return await complete_text(engine, prompts, spec, body.model, echo=bool(body.echo))
    first = await sse.primed(engine.generate(TextPrompt(prompts[0]), spec, stream=True))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = stream_text(
        engine, prompts, first, spec, body.model, echo=bool(body.echo), include_usage=include_usage
    )
    return StreamingResponse(sse.with_done(events), media_type="text/event-stream")
