"""Chat completions on any engine: one engine request of ``n`` samples, whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from decoding.engine import Engine, collect
from decoding.samples import GenerationChunk
from server.serving import sse
from server.serving.plan import Plan
from server.serving.shapes import Chunks, chat_choice, chat_logprobs, whole
from server.serving.shapes import finish_reason as wire_finish
from server.wire.chat import ChatCompletion, ChatCompletionChunk, ChunkChoice, ChunkDelta
from server.wire.common import Usage


async def complete(engine: Engine, plan: Plan) -> ChatCompletion:
    """A whole ``chat.completion``: every sample as a choice."""
    generation = await collect(engine, plan.prompt, plan.spec)
    with_logprobs = plan.spec.logprobs is not None
    return whole(
        ChatCompletion,
        [chat_choice(s, with_logprobs=with_logprobs) for s in generation.samples],
        Usage.of(generation.prompt_tokens, generation.completion_tokens),
        plan.model,
        engine.info,
    )


async def stream(engine: Engine, plan: Plan) -> AsyncIterator[str]:
    """The SSE events of a chat stream, primed: an engine error before any output is raised
    here, while the response can still get an error status."""
    chunks = await sse.primed(engine.generate(plan.prompt, plan.spec, stream=True))
    return _events(chunks, plan, Chunks(ChatCompletionChunk, plan.model, engine.info))


async def _events(
    chunks: AsyncIterator[GenerationChunk], plan: Plan, out: Chunks[ChatCompletionChunk]
) -> AsyncIterator[str]:
    """A role chunk per choice, content deltas, then usage if asked for."""
    yield out.event(
        [
            ChunkChoice(index=i, delta=ChunkDelta(role="assistant", content=""))
            for i in range(plan.spec.n)
        ]
    )
    prompt_tokens = completion_tokens = 0
    with_logprobs = plan.spec.logprobs is not None
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
                    finish_reason=wire_finish(delta.finish_reason),
                )
            )
        if choices:
            yield out.event(choices)
    if plan.include_usage:
        yield out.event([], usage=Usage.of(prompt_tokens, completion_tokens))
