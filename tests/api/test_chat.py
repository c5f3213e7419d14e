"""Chat completions through the official client: protocol invariants, not snapshots."""

from __future__ import annotations

import openai
import pytest

from bench.rig.openai_schema import validate
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL

MESSAGES = [{"role": "user", "content": "what is two plus two"}]


async def test_chat_matches_openai_schema_and_usage_adds_up(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    result = await client.chat.completions.create(model=MODEL, messages=MESSAGES, n=3)
    validate(result.model_dump(mode="json", exclude_unset=True), "CreateChatCompletionResponse")
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert all(c.finish_reason == "stop" for c in result.choices)
    assert result.choices[1].message.content == "sample 1 says: what is two plus two"
    assert result.usage is not None
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.usage.completion_tokens == 3 * len(
        ["sample", "0", "says:", "what", "is", "two", "plus", "two"]
    )
    assert len(engine.calls) == 1, "n samples must be one engine request"
    assert engine.calls[0][1].n == 3


async def test_plain_model_honours_request_parameters(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0, top_p=0.5, seed=7, max_tokens=3, stop="!"
    )
    spec = engine.calls[0][1]
    assert (spec.temperature, spec.top_p, spec.seed, spec.max_tokens) == (0, 0.5, 7, 3)
    assert spec.stop == ("!",)
    await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    default = engine.calls[1][1]
    assert (default.temperature, default.top_p, default.presence_penalty) == (1.0, 1.0, 0.0)


async def test_max_tokens_cuts_with_length_reason(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    assert result.choices[0].finish_reason == "length"
    assert result.choices[0].message.content == "sample 0"
    assert result.usage is not None and result.usage.completion_tokens == 2


async def test_max_completion_tokens_is_the_newer_name(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_completion_tokens=1
    )
    assert result.choices[0].message.content == "sample"


async def test_stop_sequence_ends_the_text(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stop=[" says"])
    assert result.choices[0].message.content == "sample 0"
    assert result.choices[0].finish_reason == "stop"


async def test_logprobs_have_openai_shape(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, logprobs=True, top_logprobs=1
    )
    validate(result.model_dump(mode="json", exclude_unset=True), "CreateChatCompletionResponse")
    logprobs = result.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == result.choices[0].message.content
    assert all(len(t.top_logprobs) == 1 for t in logprobs.content)


async def test_no_logprobs_unless_asked(client: openai.AsyncOpenAI, engine: ScriptedEngine) -> None:
    result = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert result.choices[0].logprobs is None
    assert engine.calls[0][1].logprobs is None


@pytest.mark.parametrize("n", [1, 2])
async def test_stream_chunks_join_to_the_full_text(client: openai.AsyncOpenAI, n: int) -> None:
    whole = await client.chat.completions.create(model=MODEL, messages=MESSAGES, n=n)
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, n=n, stream=True, stream_options={"include_usage": True}
    )
    texts = [""] * n
    finishes: list[list[str]] = [[] for _ in range(n)]
    usage = None
    ids = set()
    async for chunk in stream:
        validate(
            chunk.model_dump(mode="json", exclude_unset=True), "CreateChatCompletionStreamResponse"
        )
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason is not None:
                finishes[choice.index].append(choice.finish_reason)
    assert texts == [c.message.content for c in whole.choices]
    assert finishes == [["stop"]] * n, "exactly one finish_reason per choice"
    assert len(ids) == 1
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


async def test_stream_without_usage_option_sends_no_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.usage is None for chunk in chunks)


async def test_content_parts_are_joined(client: openai.AsyncOpenAI) -> None:
    result = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [{"type": "text", "text": "two parts"}]}],
    )
    assert result.choices[0].message.content == "sample 0 says: two parts"
