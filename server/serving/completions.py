"""Legacy text completions: one engine request of ``n`` samples per prompt, whole or streamed.

Choice indices follow OpenAI: prompt ``p``'s sample ``i`` is choice ``p * n + i``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from decoding.engine import Engine, TextPrompt, collect
from decoding.samples import GenerationChunk, Sample
from server.serving import sse
from server.serving.plan import Plan
from server.serving.shapes import Chunks, completion_logprobs, whole
from server.serving.shapes import finish_reason as wire_finish
from server.wire.common import Usage
from server.wire.completions import Completion, CompletionChoice


def _texts(plan: Plan) -> list[str]:
    return [p.text for p in plan.prompts if isinstance(p, TextPrompt)]


def _choice(plan: Plan, p: int, sample: Sample, prefix: str) -> CompletionChoice:
    return CompletionChoice(
        index=p * plan.spec.n + sample.index,
        text=prefix + sample.text,
        logprobs=completion_logprobs(sample.logprobs, len(prefix))
        if plan.spec.logprobs is not None
        else None,
        finish_reason=wire_finish(sample.finish_reason),
    )


async def complete(engine: Engine, plan: Plan) -> Completion:
    """Run every prompt concurrently (one engine request each) and gather the choices."""
    texts = _texts(plan)
    generations = await asyncio.gather(*(collect(engine, p, plan.spec) for p in plan.prompts))
    choices = [
        _choice(plan, p, s, texts[p] if plan.echo else "")
        for p, generation in enumerate(generations)
        for s in generation.samples
    ]
    usage = Usage.of(
        sum(g.prompt_tokens for g in generations), sum(g.completion_tokens for g in generations)
    )
    return whole(Completion, choices, usage, plan.model, engine.info)


async def stream(engine: Engine, plan: Plan) -> AsyncIterator[str]:
    """SSE events of a completions stream; prompts run one after another, the first primed so
    an engine error before any output still gets an error status."""
    first = await sse.primed(engine.generate(plan.prompt, plan.spec, stream=True))
    return _events(engine, plan, first, Chunks(Completion, plan.model, engine.info))


async def _events(
    engine: Engine, plan: Plan, first: AsyncIterator[GenerationChunk], out: Chunks[Completion]
) -> AsyncIterator[str]:
    n, texts = plan.spec.n, _texts(plan)
    prompt_tokens = completion_tokens = 0
    for p, text in enumerate(texts):
        chunks = (
            first
            if p == 0
            else await sse.primed(engine.generate(TextPrompt(text), plan.spec, stream=True))
        )
        offsets = [len(text) if plan.echo else 0] * n
        prompt_tokens_of_this = 0
        if plan.echo:
            yield out.event(
                [CompletionChoice(index=p * n + i, text=text, finish_reason=None) for i in range(n)]
            )
        async for step in chunks:
            prompt_tokens_of_this = step.prompt_tokens
            choices = []
            for d in step.deltas:
                completion_tokens += d.token_count
                choices.append(
                    CompletionChoice(
                        index=p * n + d.index,
                        text=d.text,
                        logprobs=completion_logprobs(d.logprobs, offsets[d.index])
                        if plan.spec.logprobs is not None
                        else None,
                        finish_reason=wire_finish(d.finish_reason),
                    )
                )
                offsets[d.index] += len(d.text)
            yield out.event(choices)
        prompt_tokens += prompt_tokens_of_this
    if plan.include_usage:
        yield out.event([], usage=Usage.of(prompt_tokens, completion_tokens))
