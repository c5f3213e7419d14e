"""Chat completions on any engine: one engine request of ``n`` samples, whole or streamed."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from decoding.engine import (
    ChatPrompt,
    Engine,
    EngineInfo,
    GenerationChunk,
    Sample,
    SamplingSpec,
    TokenLogprob,
    fold,
)
from server import __version__, sse
from server.wire.chat import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    ResponseMessage,
    TokenLogprobOut,
    TopLogprob,
)
from server.wire.common import Usage


def chat_prompt(request: ChatCompletionRequest) -> ChatPrompt:
    """The conversation as plain role/content messages for the chat template."""
    return ChatPrompt(messages=[{"role": m.role, "content": m.text()} for m in request.messages])


def logprobs_requested(request: ChatCompletionRequest) -> int | None:
    """Engine logprobs for a chat request: None unless ``logprobs`` is true."""
    return (request.top_logprobs or 0) if request.logprobs else None


def _token_bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def chat_logprobs(tokens: list[TokenLogprob] | None) -> ChoiceLogprobs | None:
    """OpenAI's chat logprobs shape for a run of tokens."""
    if tokens is None:
        return None
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=t.token,
                logprob=t.logprob,
                bytes=_token_bytes(t.token),
                top_logprobs=[
                    TopLogprob(token=tok, logprob=lp, bytes=_token_bytes(tok)) for tok, lp in t.top
                ],
            )
            for t in tokens
        ]
    )


def fingerprint(info: EngineInfo) -> str:
    """OpenAI's ``system_fingerprint``: which backend produced this, for replay checks."""
    return f"quorum-{__version__}/{info.engine}-{info.version}".replace(" ", "-")


def completion_id() -> str:
    """A fresh OpenAI-style id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_response(
    samples: list[Sample], prompt_tokens: int, model: str, fingerprint: str, *, with_logprobs: bool
) -> ChatCompletion:
    """A ``chat.completion`` from finished samples."""
    completion_tokens = sum(s.token_count for s in samples)
    return ChatCompletion(
        id=completion_id(),
        created=int(time.time()),
        model=model,
        choices=[
            ChatChoice(
                index=s.index,
                message=ResponseMessage(content=s.text),
                logprobs=chat_logprobs(s.logprobs) if with_logprobs else None,
                finish_reason="length" if s.finish_reason == "length" else "stop",
            )
            for s in samples
        ],
        usage=Usage.of(prompt_tokens, completion_tokens),
        system_fingerprint=fingerprint,
    )


async def complete_chat(
    engine: Engine, prompt: ChatPrompt, spec: SamplingSpec, model: str
) -> ChatCompletion:
    """Run a non-streaming chat completion."""
    chunks = [c async for c in engine.generate(prompt, spec, stream=False)]
    generation = fold(chunks, spec.n)
    return chat_response(
        generation.samples,
        generation.prompt_tokens,
        model,
        fingerprint(engine.info),
        with_logprobs=spec.logprobs is not None,
    )


async def stream_chat(
    chunks: AsyncIterator[GenerationChunk],
    spec: SamplingSpec,
    model: str,
    fingerprint: str,
    *,
    include_usage: bool,
) -> AsyncIterator[str]:
    """SSE events of a chat stream: a role chunk per choice, content deltas, optional usage."""
    cid, created = completion_id(), int(time.time())

    def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        return sse.event(
            ChatCompletionChunk(
                id=cid,
                created=created,
                model=model,
                choices=choices,
                usage=usage,
                system_fingerprint=fingerprint,
            )
        )

    yield chunk(
        [
            ChunkChoice(index=i, delta=ChunkDelta(role="assistant", content=""))
            for i in range(spec.n)
        ]
    )
    prompt_tokens = completion_tokens = 0
    with_logprobs = spec.logprobs is not None
    async for step in chunks:
        prompt_tokens = step.prompt_tokens
        choices = []
        for delta in step.deltas:
            completion_tokens += delta.token_count
            if not delta.text and delta.finish_reason is None:
                continue
            choices.append(
                ChunkChoice(
                    index=delta.index,
                    delta=ChunkDelta(content=delta.text),
                    logprobs=chat_logprobs(delta.logprobs) if with_logprobs else None,
                    finish_reason=None
                    if delta.finish_reason is None
                    else ("length" if delta.finish_reason == "length" else "stop"),
                )
            )
        if choices:
            yield chunk(choices)
    if include_usage:
        yield chunk([], Usage.of(prompt_tokens, completion_tokens))
