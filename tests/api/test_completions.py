"""Legacy completions through the official client."""

from __future__ import annotations

from typing import Any

import openai

from bench.rig.openai_schema import validate
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL


async def test_completion_matches_schema(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    result = await client.completions.create(model=MODEL, prompt="one two", max_tokens=50)
    validate(result.model_dump(mode="json", exclude_unset=True), "CreateCompletionResponse")
    assert result.choices[0].text == "sample 0 says: one two"
    assert result.choices[0].finish_reason == "stop"
    assert engine.calls[0][1].max_tokens == 50


async def test_default_max_tokens_is_openais_16(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    await client.completions.create(model=MODEL, prompt="x")
    assert engine.calls[0][1].max_tokens == 16


async def test_prompt_list_indexes_choices_by_prompt_then_sample(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    result = await client.completions.create(model=MODEL, prompt=["a", "b"], n=2)
    assert [(c.index, c.text) for c in result.choices] == [
        (0, "sample 0 says: a"),
        (1, "sample 1 says: a"),
        (2, "sample 0 says: b"),
        (3, "sample 1 says: b"),
    ]
    assert len(engine.calls) == 2


async def test_echo_prepends_prompt_and_logprob_offsets_follow(client: openai.AsyncOpenAI) -> None:
    result = await client.completions.create(model=MODEL, prompt="hi", echo=True, logprobs=1)
    choice = choice_of(result)
    assert choice.text == "hisample 0 says: hi"
    assert choice.logprobs is not None
    assert choice.logprobs.text_offset is not None and choice.logprobs.text_offset[0] == 2
    assert "".join(choice.logprobs.tokens or []) == "sample 0 says: hi"


def validate_stream_chunk(chunk: dict[str, Any]) -> None:
    """OpenAI's spec has no completions stream schema; its chunks are CreateCompletionResponse
    objects whose ``finish_reason`` is null until a choice ends, so only that field is relaxed."""
    choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]
    validate({**chunk, "choices": choices}, "CreateCompletionResponse")


def choice_of(result: openai.types.Completion) -> openai.types.CompletionChoice:
    """The only choice of a result."""
    assert len(result.choices) == 1
    return result.choices[0]


async def test_stream_joins_to_the_whole_text(client: openai.AsyncOpenAI) -> None:
    whole = await client.completions.create(model=MODEL, prompt=["a b", "c"], n=2)
    stream = await client.completions.create(
        model=MODEL, prompt=["a b", "c"], n=2, stream=True, stream_options={"include_usage": True}
    )
    texts = [""] * 4
    finishes: list[list[str]] = [[] for _ in range(4)]
    usage = None
    async for chunk in stream:
        validate_stream_chunk(chunk.model_dump(mode="json", exclude_unset=True))
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.text
            if choice.finish_reason:
                finishes[choice.index].append(choice.finish_reason)
    assert texts == [c.text for c in whole.choices]
    assert finishes == [["stop"]] * 4
    assert usage is not None and usage == whole.usage
