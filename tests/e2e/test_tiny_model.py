"""Protocol behaviour on the real vLLM engine with a tiny random Llama (its text is noise)."""

from __future__ import annotations

import httpx
import openai
import pytest

from bench.rig.openai_schema import validate
from tests.e2e.conftest import TINY
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.engine
MESSAGES = [{"role": "user", "content": "hello there"}]


def test_models_and_health(tiny: openai.OpenAI, tiny_server: ServerProcess) -> None:
    assert [m.id for m in tiny.models.list().data] == [TINY, f"{TINY}:creative", f"{TINY}:precise"]
    assert httpx.get(f"{tiny_server.base_url}/health").json() == {"status": "ok"}


def test_chat_n_samples_one_request_with_usage(tiny: openai.OpenAI) -> None:
    result = tiny.chat.completions.create(
        model=TINY, messages=MESSAGES, n=3, max_tokens=6, seed=1, temperature=1.0
    )
    validate(result.model_dump(mode="json", exclude_unset=True), "CreateChatCompletionResponse")
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 3 * 6
    for choice in result.choices:
        assert choice.finish_reason in ("stop", "length")


def test_seed_replays_exactly(tiny: openai.OpenAI) -> None:
    def run() -> list[str | None]:
        result = tiny.chat.completions.create(
            model=TINY, messages=MESSAGES, n=2, max_tokens=8, seed=42, temperature=1.0
        )
        return [c.message.content for c in result.choices]

    assert run() == run()


def test_max_tokens_is_exact_when_the_reason_is_length(tiny: openai.OpenAI) -> None:
    result = tiny.completions.create(model=TINY, prompt="one two", max_tokens=5, temperature=0)
    assert result.usage is not None
    if result.choices[0].finish_reason == "length":
        assert result.usage.completion_tokens == 5
    else:
        assert result.usage.completion_tokens <= 5


def test_stream_joins_to_the_greedy_text(tiny: openai.OpenAI) -> None:
    whole = tiny.chat.completions.create(
        model=TINY, messages=MESSAGES, max_tokens=12, temperature=0
    )
    stream = tiny.chat.completions.create(
        model=TINY,
        messages=MESSAGES,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finishes, usage, chunks = "", [], None, 0
    for chunk in stream:
        chunks += 1
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert text == whole.choices[0].message.content
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks > 3, "tokens must arrive one by one, not in one block"
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_streamed_n_samples_each_finish_once(tiny: openai.OpenAI) -> None:
    stream = tiny.chat.completions.create(
        model=TINY, messages=MESSAGES, n=2, max_tokens=6, seed=5, stream=True
    )
    finishes: dict[int, int] = {}
    for chunk in stream:
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes[choice.index] = finishes.get(choice.index, 0) + 1
    assert finishes == {0: 1, 1: 1}


def test_completion_logprobs_match_the_text(tiny: openai.OpenAI) -> None:
    result = tiny.completions.create(
        model=TINY, prompt="the cat", max_tokens=6, temperature=0, logprobs=2
    )
    validate(result.model_dump(mode="json", exclude_unset=True), "CreateCompletionResponse")
    logprobs = result.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.token_logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs)
    assert all(lp is not None and lp <= 0 for lp in logprobs.token_logprobs)
    assert logprobs.top_logprobs and all(len(top) >= 1 for top in logprobs.top_logprobs)


def test_chat_logprobs_are_greedy_maxima(tiny: openai.OpenAI) -> None:
    result = tiny.chat.completions.create(
        model=TINY, messages=MESSAGES, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3
    )
    content = result.choices[0].logprobs and result.choices[0].logprobs.content
    assert content
    for token in content:
        best = max(alt.logprob for alt in token.top_logprobs)
        assert token.logprob == pytest.approx(best, abs=1e-4), "greedy picks the top token"


def test_context_overflow_is_400_and_server_still_serves(tiny: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        tiny.chat.completions.create(
            model=TINY, messages=[{"role": "user", "content": "word " * 400}], max_tokens=400
        )
    assert caught.value.param == "max_tokens"
    assert "512" in caught.value.message
    ok = tiny.chat.completions.create(model=TINY, messages=MESSAGES, max_tokens=2)
    assert ok.usage is not None and ok.usage.completion_tokens >= 1


def test_creative_route_and_alias(tiny_server: ServerProcess, tiny: openai.OpenAI) -> None:
    response = httpx.post(
        f"{tiny_server.base_url}/v1/creative",
        json={"messages": MESSAGES, "max_tokens": 6, "n": 2, "seed": 3},
        timeout=60,
    )
    assert response.status_code == 200
    validate(response.json(), "CreateChatCompletionResponse")
    alias = tiny.chat.completions.create(model=f"{TINY}:creative", messages=MESSAGES, max_tokens=4)
    assert alias.choices[0].message.content
