"""The fourteen OpenAI drop-in checks, in the order bench/README.md documents them.

Each one sends what an OpenAI client sends and holds the answer to what OpenAI's API reference
and schemas promise: the shapes (schema-valid bodies, chunks and errors), the sampling options
a client relies on (``n``, ``max_tokens``, ``stop``, ``logprobs``, ``stream_options``), the
status codes of refusals, and that a field the server cannot honour is refused rather than
silently ignored. Each check holds the answer to its own promise only (the sampling checks read
the fields they are about, not the whole body's schema), so one deviation fails one check, not
every check whose answer carries it. The checks depend only on greedy decoding being
repeatable, never on what a particular model writes: the stop check takes its stop string from
the model's own answer.
"""

from __future__ import annotations

from typing import Any

from bench.rig.conformance_kit import (
    CHAT,
    COMPLETIONS,
    MODELS,
    PROMPT,
    Check,
    CheckFailed,
    Target,
    answer,
    chat,
    conforms,
    expect,
    json_object,
    refusal,
    refused,
    stop_string,
    stream,
    usage_adds_up,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def one_finish(chunks: list[dict[str, Any]], index: int = 0) -> str:
    """The one finish reason a streamed choice ends with, or the check fails."""
    finishes = [
        choice.get("finish_reason")
        for chunk in chunks
        for choice in chunk.get("choices") or []
        if choice.get("index") == index and choice.get("finish_reason") is not None
    ]
    expect(len(finishes) == 1, f"choice {index} has finish reasons {finishes}, not one")
    return str(finishes[0])


async def chat_response(target: Target) -> None:
    """A chat completion is a CreateChatCompletionResponse whose usage adds up."""
    payload = await answer(target, CHAT, chat(target))
    conforms(payload, "CreateChatCompletionResponse")
    usage_adds_up(payload.get("usage"))


async def chat_stream(target: Target) -> None:
    """Every streamed chunk is a CreateChatCompletionStreamResponse, the choice ends once, and
    the stream ends with ``data: [DONE]``."""
    chunks, done = await stream(target, chat(target))
    expect(chunks, "no chunks")
    for chunk in chunks:
        conforms(chunk, "CreateChatCompletionStreamResponse")
    one_finish(chunks)
    expect(done, "the stream does not end with one `data: [DONE]`")


async def stream_usage(target: Target) -> None:
    """``stream_options.include_usage``: a last chunk with no choices and the whole request's
    usage; every other chunk's usage is null."""
    chunks, _ = await stream(target, chat(target, stream_options={"include_usage": True}))
    expect(chunks, "no chunks")
    *others, last = chunks
    conforms(last, "CreateChatCompletionStreamResponse")
    expect(last.get("choices") == [], f"the last chunk has choices: {last.get('choices')}")
    usage_adds_up(last.get("usage"))
    stray = [chunk["usage"] for chunk in others if chunk.get("usage") is not None]
    expect(not stray, f"usage before the last chunk: {stray[:1]}")


async def completion_response(target: Target) -> None:
    """A legacy completion is a CreateCompletionResponse whose usage adds up."""
    body = {"model": target.model, "prompt": PROMPT, "max_tokens": 8, "temperature": 0.0}
    payload = await answer(target, COMPLETIONS, body)
    conforms(payload, "CreateCompletionResponse")
    usage_adds_up(payload.get("usage"))


async def models_list(target: Target) -> None:
    """``GET /v1/models`` is a ListModelsResponse that lists the model served."""
    response = await target.http.get(MODELS)
    expect(response.status_code == 200, f"HTTP {response.status_code}")
    payload = json_object(response)
    conforms(payload, "ListModelsResponse")
    ids = [model.get("id") for model in payload["data"]]
    expect(target.model in ids, f"{target.model!r} is not among {ids}")


async def two_choices(target: Target) -> None:
    """``n: 2`` gives two choices, indexed 0 and 1."""
    payload = await answer(target, CHAT, chat(target, n=2, temperature=1.0))
    indexes = sorted(choice["index"] for choice in payload["choices"])
    expect(indexes == [0, 1], f"choice indexes {indexes}, not [0, 1]")


async def length_limit(target: Target) -> None:
    """A reply cut by ``max_tokens`` ends with ``length`` and counts exactly that many tokens."""
    payload = await answer(target, CHAT, chat(target, max_tokens=3))
    finish = payload["choices"][0]["finish_reason"]
    tokens = (payload.get("usage") or {}).get("completion_tokens")
    expect(finish == "length", f"finish_reason {finish!r} at max_tokens 3")
    expect(tokens == 3, f"completion_tokens {tokens} at max_tokens 3")


async def stop_sequence(target: Target) -> None:
    """``stop`` ends the reply before the stop string's first occurrence, which is left out,
    with ``stop``; the stop string is taken from the same request's free greedy answer."""
    free = await answer(target, CHAT, chat(target, max_tokens=24))
    text = free["choices"][0]["message"]["content"] or ""
    picked = stop_string(text)
    if picked is None:
        raise CheckFailed(f"inconclusive: the free answer {text!r} is too short to stop in")
    stop, first = picked
    payload = await answer(target, CHAT, chat(target, max_tokens=24, stop=[stop]))
    choice = payload["choices"][0]
    content = choice["message"]["content"] or ""
    expect(stop not in content, f"the stop string {stop!r} is in the reply {content!r}")
    expect(
        content == text[:first],
        f"stopped at {content!r}, not before {stop!r} in {text!r}",
    )
    expect(choice["finish_reason"] == "stop", f"finish_reason {choice['finish_reason']!r}")


async def token_logprobs(target: Target) -> None:
    """``logprobs: true, top_logprobs: 2``: a ChatCompletionTokenLogprob for every token, two
    alternatives each."""
    payload = await answer(target, CHAT, chat(target, max_tokens=4, logprobs=True, top_logprobs=2))
    content = (payload["choices"][0].get("logprobs") or {}).get("content") or []
    expect(content, f"no logprobs content: {payload['choices'][0].get('logprobs')!r}")
    for token in content:
        conforms(token, "ChatCompletionTokenLogprob")
    counts = [len(token["top_logprobs"]) for token in content]
    expect(all(count == 2 for count in counts), f"top_logprobs per token {counts}, not 2 each")


async def unknown_model(target: Target) -> None:
    """A model the server does not serve is a 404 with an OpenAI error body."""
    body = chat(target, model="no-such-model")
    refusal(await target.http.post(CHAT, json=body), 404)


async def invalid_json(target: Target) -> None:
    """A body that is not JSON is a 400 with an OpenAI error body."""
    headers = {"content-type": "application/json"}
    refusal(await target.http.post(CHAT, content=b'{"model": ', headers=headers), 400)


async def wrong_type(target: Target) -> None:
    """A field of the wrong type is a 400 whose error names the field in ``param``."""
    body = chat(target, temperature="hot")
    error = refusal(await target.http.post(CHAT, json=body), 400)
    expect(error["param"] == "temperature", f"param {error['param']!r}, not 'temperature'")


async def tools_honoured_or_refused(target: Target) -> None:
    """``tools`` with a named ``tool_choice``: the server calls that tool (schema-valid tool
    calls), or refuses with a 400 whose error names the field; answering in plain text would
    ignore it silently. The error's other fields are the error checks' business."""
    tool_choice = {"type": "function", "function": {"name": "get_weather"}}
    body = chat(target, max_tokens=24, tools=[TOOL], tool_choice=tool_choice)
    response = await target.http.post(CHAT, json=body)
    if response.status_code == 200:
        payload = json_object(response)
        calls = payload["choices"][0]["message"].get("tool_calls") or []
        expect(calls, f"tools ignored: no call, the reply {payload}")
        conforms(calls, "ChatCompletionMessageToolCalls")
        names = [call["function"]["name"] for call in calls]
        expect(names[:1] == ["get_weather"], f"called {names}, not get_weather")
        return
    error = refused(response, 400)
    named = error.get("param") in ("tools", "tool_choice") or "tool" in str(error.get("message"))
    expect(named, f"the refusal does not name the field: {error}")


async def openai_client(target: Target) -> None:
    """The official ``openai`` client reads a chat and a stream without error."""
    messages: Any = [{"role": "user", "content": PROMPT}]
    completion = await target.client.chat.completions.create(
        model=target.model, messages=messages, max_tokens=8, temperature=0.0
    )
    expect(completion.choices, "no choices")
    expect(isinstance(completion.choices[0].message.content, str), "no message content")
    chunks = await target.client.chat.completions.create(
        model=target.model, messages=messages, max_tokens=8, temperature=0.0, stream=True
    )
    finishes = [c.finish_reason async for chunk in chunks for c in chunk.choices if c.finish_reason]
    expect(len(finishes) == 1, f"the stream's finish reasons {finishes}, not one")


CHECKS = [
    Check("chat", "chat completion is a CreateChatCompletionResponse", chat_response),
    Check("stream", "streamed chunks are schema-valid, end with [DONE]", chat_stream),
    Check("stream-usage", "stream_options.include_usage: a final usage chunk", stream_usage),
    Check("completion", "completion is a CreateCompletionResponse", completion_response),
    Check("models", "GET /v1/models is a ListModelsResponse", models_list),
    Check("n", "n=2: two choices, indexes 0 and 1", two_choices),
    Check("length", "max_tokens reached: finish_reason length, tokens counted", length_limit),
    Check("stop", "stop honoured: finish_reason stop, stop string absent", stop_sequence),
    Check("logprobs", "logprobs with top_logprobs 2: schema-valid, 2 each", token_logprobs),
    Check("unknown-model", "unknown model: 404 with an ErrorResponse", unknown_model),
    Check("invalid-json", "invalid JSON body: 400 with an ErrorResponse", invalid_json),
    Check("wrong-type", "wrong type (temperature 'hot'): 400 naming the param", wrong_type),
    Check("tools", "tools: honoured or refused with a 400, not ignored", tools_honoured_or_refused),
    Check("openai-client", "official openai client: a chat and a stream", openai_client),
]
