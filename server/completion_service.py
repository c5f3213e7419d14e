"""Legacy text completions: one engine request of ``n`` samples per prompt, whole or streamed.

Choice indices follow OpenAI: prompt ``p``'s sample ``i`` is choice ``p * n + i``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from decoding.engine import (
    Engine,
    GenerationChunk,
    Sample,
    SamplingSpec,
    TextPrompt,
    TokenLogprob,
    fold,
)
from server import sse
from server.chat_service import fingerprint
from server.wire.common import Usage
from server.wire.completions import Completion, CompletionChoice, CompletionLogprobs


def completion_logprobs(
    sample_logprobs: Sequence[TokenLogprob] | None, offset: int
) -> CompletionLogprobs | None:
    """The legacy logprobs shape; ``offset`` is where this text starts in the choice."""
    if sample_logprobs is None:
        return None
    tokens: list[str] = []
    token_logprobs: list[float] = []
    top: list[dict[str, float]] = []
    offsets: list[int] = []
    for t in sample_logprobs:
        tokens.append(t.token)
        token_logprobs.append(t.logprob)
        top.append(dict(t.top))
        offsets.append(offset)
        offset += len(t.token)
    return CompletionLogprobs(
        text_offset=offsets, token_logprobs=token_logprobs, tokens=tokens, top_logprobs=top
    )


def _finish(reason: str | None) -> Literal["stop", "length"] | None:
    if reason is None:
        return None
    return "length" if reason == "length" else "stop"


def _new_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


async def complete_text(
    engine: Engine, prompts: list[str], spec: SamplingSpec, model: str, *, echo: bool
) -> Completion:
    """Run every prompt concurrently (one engine request each) and gather the choices."""

    async def one(text: str) -> tuple[int, list[Sample]]:
        chunks = [c async for c in engine.generate(TextPrompt(text), spec, stream=False)]
        generation = fold(chunks, spec.n)
        return generation.prompt_tokens, generation.samples

    results = await asyncio.gather(*(one(p) for p in prompts))
    choices, prompt_tokens, completion_tokens = [], 0, 0
    for p, (tokens, samples) in enumerate(results):
        prompt_tokens += tokens
        for s in samples:
            completion_tokens += s.token_count
            prefix = prompts[p] if echo else ""
            choices.append(
                CompletionChoice(
                    index=p * spec.n + s.index,
                    text=prefix + s.text,
                    logprobs=completion_logprobs(s.logprobs, len(prefix))
                    if spec.logprobs is not None
                    else None,
                    finish_reason=_finish(s.finish_reason),
                )
            )
    return Completion(
        id=_new_id(),
        created=int(time.time()),
        model=model,
        system_fingerprint=fingerprint(engine.info),
        choices=choices,
        usage=Usage.of(prompt_tokens, completion_tokens),
    )


async def stream_text(
    engine: Engine,
    prompts: list[str],
    first: AsyncIterator[GenerationChunk],
    spec: SamplingSpec,
    model: str,
    *,
    echo: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    """SSE events of a completions stream; prompts run one after another (``first`` is primed)."""
    cid, created, fp = _new_id(), int(time.time()), fingerprint(engine.info)

    def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> str:
        return sse.event(
            Completion(
                id=cid,
                created=created,
                model=model,
                choices=choices,
                usage=usage,
                system_fingerprint=fp,
            )
        )

    prompt_tokens = completion_tokens = 0
    for p, text in enumerate(prompts):
        chunks = (
            first
            if p == 0
            else await sse.primed(engine.generate(TextPrompt(text), spec, stream=True))
        )
        offsets = [len(text) if echo else 0] * spec.n
        prompt_tokens_of_this = 0
        if echo:
            yield chunk(
                [
                    CompletionChoice(index=p * spec.n + i, text=text, finish_reason=None)
                    for i in range(spec.n)
                ]
            )
        async for step in chunks:
            prompt_tokens_of_this = step.prompt_tokens
            choices = []
            for d in step.deltas:
                completion_tokens += d.token_count
                choices.append(
                    CompletionChoice(
                        index=p * spec.n + d.index,
                        text=d.text,
                        logprobs=completion_logprobs(d.logprobs, offsets[d.index])
                        if spec.logprobs is not None
                        else None,
                        finish_reason=_finish(d.finish_reason),
                    )
                )
                offsets[d.index] += len(d.text)
            yield chunk(choices)
        prompt_tokens += prompt_tokens_of_this
    if include_usage:
        yield chunk([], Usage.of(prompt_tokens, completion_tokens))
