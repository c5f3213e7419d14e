"""Precise mode over HTTP: ``POST /v1/precise`` and the ``<name>:precise`` OpenAI aliases.

Streaming is honest: the vote needs every sample, so a stream carries progress events while
samples are drawn and the winning text once the vote is decided, never a fake token stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from decoding.engine import ChatPrompt, Engine, Prompt, TextPrompt
from decoding.self_consistency import ConsistencyResult, ProgressHook, RoundProgress
from server import sse
from server.chat_service import chat_prompt, completion_id, fingerprint
from server.errors import InvalidRequest
from server.plan import SamplingRequest, resolve_mode
from server.precise_service import precise_answer, run_precise
from server.routes.deps import ServingEngine, state
from server.routes.documented import ERROR_RESPONSES, SSE_RESPONSE
from server.settings import Settings
from server.wire.chat import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    ResponseMessage,
    request_extras,
)
from server.wire.common import Usage
from server.wire.completions import Completion, CompletionChoice, CompletionRequest
from server.wire.precise import Evidence, PreciseAnswer, PreciseOptions, PreciseRequest

router = APIRouter(prefix="/v1", tags=["quorum"])
Outcome = tuple[ConsistencyResult, Evidence]


class SamplingFields(Protocol):
    """The sampling fields every precise-capable body shares (chat, completions, precise)."""

    temperature: float | None
    top_p: float | None
    seed: int | None
    stop: str | list[str] | None
    presence_penalty: float | None
    frequency_penalty: float | None


def _sampling(
    body: SamplingFields, max_tokens: int | None, max_tokens_param: str = "max_tokens"
) -> SamplingRequest:
    """A body's sampling fields; ``n`` stays unset, precise mode draws ``samples`` instead."""
    return SamplingRequest(
        n=None,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=max_tokens,
        seed=body.seed,
        stop=body.stop,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logprobs=None,
        max_tokens_param=max_tokens_param,
    )


def options_from_extras(extras: dict[str, Any], temperature: float | None) -> PreciseOptions:
    """Precise options sent as extra body fields of an OpenAI request."""
    try:
        return PreciseOptions.model_validate({**extras, "temperature": temperature})
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidRequest(f"{param}: {first.get('msg', 'invalid')}", param=param) from exc


def _usage(result: ConsistencyResult) -> Usage:
    return Usage.of(result.prompt_tokens, result.completion_tokens)


def progress_event(progress: RoundProgress) -> dict[str, Any]:
    """A progress event: the running tally after an engine round."""
    return {"object": "precise.progress", "stage": "voting", **asdict(progress)}


async def _with_progress(
    start: Callable[[ProgressHook], Awaitable[Outcome]], samples: int
) -> AsyncIterator[dict[str, Any] | Outcome]:
    """Progress events while samples are drawn, then the outcome; closing the stream cancels
    the work (and with it every engine request it started)."""
    rounds: asyncio.Queue[RoundProgress] = asyncio.Queue()
    task = asyncio.ensure_future(start(rounds.put_nowait))
    try:
        yield {"object": "precise.progress", "stage": "sampling", "samples": samples}
        while not task.done():
            next_round = asyncio.ensure_future(rounds.get())
            await asyncio.wait({task, next_round}, return_when=asyncio.FIRST_COMPLETED)
            if next_round.done():
                yield progress_event(next_round.result())
            else:
                next_round.cancel()
        while not rounds.empty():
            yield progress_event(rounds.get_nowait())
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@router.post(
    "/precise", response_model=PreciseAnswer, responses={**ERROR_RESPONSES, **SSE_RESPONSE}
)
async def precise(
    body: PreciseRequest, request: Request, engine: ServingEngine
) -> PreciseAnswer | StreamingResponse:
    """Greedy for one sample; for N, one engine request of n=N and a vote over the answers."""
    settings = state(request).settings
    if resolve_mode(body.model, settings.model_name, default="precise") != "precise":
        raise InvalidRequest("/v1/precise serves only the precise mode", param="model")
    prompt: Prompt = (
        chat_prompt(ChatCompletionRequest(messages=body.messages))
        if body.messages is not None
        else TextPrompt(body.prompt or "")
    )
    sampling = _sampling(body, body.max_tokens)
    model = body.model or settings.model_name
    if not body.stream:
        result, proof = await run_precise(engine, prompt, body, sampling, settings)
        return precise_answer(result, proof, model)

    async def events() -> AsyncIterator[str]:
        def start(hook: ProgressHook) -> Awaitable[Outcome]:
            return run_precise(engine, prompt, body, sampling, settings, hook)

        async for item in _with_progress(start, body.samples):
            if isinstance(item, dict):
                yield sse.event(item)
            else:
                yield sse.event(precise_answer(*item, model))

    return StreamingResponse(sse.with_done(events()), media_type="text/event-stream")


async def precise_chat(
    body: ChatCompletionRequest, engine: Engine, settings: Settings
) -> ChatCompletion | StreamingResponse:
    """``<name>:precise`` on chat completions: the winning text as the message, the evidence
    in the extra top-level field ``quorum``."""
    if body.n not in (None, 1):
        raise InvalidRequest("precise mode returns one answer: use samples, not n", param="n")
    options = options_from_extras(request_extras(body), body.temperature)
    uses_new_name = body.max_completion_tokens is not None
    sampling = _sampling(
        body,
        body.max_completion_tokens if uses_new_name else body.max_tokens,
        "max_completion_tokens" if uses_new_name else "max_tokens",
    )
    prompt: ChatPrompt = chat_prompt(body)
    model = body.model or settings.model_name
    fp = fingerprint(engine.info)
    if not body.stream:
        result, proof = await run_precise(engine, prompt, options, sampling, settings)
        return ChatCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=model,
            choices=[
                ChatChoice(
                    index=0, message=ResponseMessage(content=result.text), finish_reason="stop"
                )
            ],
            usage=_usage(result),
            system_fingerprint=fp,
            quorum=proof.model_dump(),
        )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    cid, created = completion_id(), int(time.time())

    def chunk(choices: list[ChunkChoice], **extra: Any) -> str:
        return sse.event(
            ChatCompletionChunk(
                id=cid,
                created=created,
                model=model,
                choices=choices,
                system_fingerprint=fp,
                **extra,
            )
        )

    async def events() -> AsyncIterator[str]:
        def start(hook: ProgressHook) -> Awaitable[Outcome]:
            return run_precise(engine, prompt, options, sampling, settings, hook)

        async for item in _with_progress(start, options.samples):
            if isinstance(item, dict):
                # Progress rides on choice-less chunks: clients that ignore them skip them.
                yield chunk([], quorum=item)
                continue
            result, proof = item
            yield chunk(
                [ChunkChoice(index=0, delta=ChunkDelta(role="assistant", content=result.text))]
            )
            yield chunk(
                [ChunkChoice(index=0, delta=ChunkDelta(), finish_reason="stop")],
                quorum=proof.model_dump(),
            )
            if include_usage:
                yield chunk([], usage=_usage(result))

    return StreamingResponse(sse.with_done(events()), media_type="text/event-stream")


async def precise_completion(
    body: CompletionRequest, engine: Engine, settings: Settings
) -> Completion:
    """``<name>:precise`` on legacy completions (one prompt, not streamed)."""
    if not isinstance(body.prompt, str):
        raise InvalidRequest("precise mode takes one prompt string", param="prompt")
    if body.n not in (None, 1):
        raise InvalidRequest("precise mode returns one answer: use samples, not n", param="n")
    if body.stream:
        raise InvalidRequest("stream precise completions through /v1/precise", param="stream")
    options = options_from_extras(request_extras(body), body.temperature)
    sampling = _sampling(body, body.max_tokens)
    result, proof = await run_precise(engine, TextPrompt(body.prompt), options, sampling, settings)
    return Completion(
        id=completion_id().replace("chatcmpl", "cmpl"),
        created=int(time.time()),
        model=body.model,
        choices=[CompletionChoice(index=0, text=result.text or "", finish_reason="stop")],
        usage=_usage(result),
        system_fingerprint=fingerprint(engine.info),
        quorum=proof.model_dump(),
    )
