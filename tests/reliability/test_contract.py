"""The request contract, in-process: no client input gets a 5xx, what the server does not do is
refused by name, types are JSON's own, and after every refusal the server still serves.

Each table row is one body; each is sent, its 400 checked (status, ``param``, the words that
say why, no internals), and then ``/health`` and a good request must still succeed, with the
engine untouched by the bad one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.engines.scripted import ScriptedEngine
from server.wire.common import UnsupportedFields
from tests.e2e.server_process import ServerProcess
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, make_settings, scripted_process
from tests.reliability.test_input_limits import assert_openai_error

COMPLETIONS, CREATIVE, PRECISE = "/v1/completions", "/v1/creative", "/v1/precise"
BODIES: dict[str, dict[str, Any]] = {
    CHAT: {"model": MODEL, "messages": MESSAGES},
    COMPLETIONS: {"model": MODEL, "prompt": "hi"},
    CREATIVE: {"messages": MESSAGES},
    PRECISE: {"messages": MESSAGES},
}
UNSUPPORTED = sorted(UnsupportedFields.model_fields)
UNSUPPORTED_VALUES: dict[str, Any] = {
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "auto",
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_object"},
    "logit_bias": {"50256": -100},
    "best_of": 2,
}


JSON = {"content-type": "application/json"}


def with_fields(path: str, **fields: Any) -> bytes:
    return json.dumps({**BODIES[path], **fields}).encode()


async def refused_then_still_serving(
    http: httpx.AsyncClient, engine: ScriptedEngine, path: str, body: bytes
) -> dict[str, Any]:
    """Send a bad body: 400, the engine untouched; then /health and a good request work."""
    response = await http.post(path, content=body, headers=JSON)
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert engine.calls == []
    assert (await http.get("/health")).status_code == 200
    good = await http.post(path, json=BODIES[path])
    assert good.status_code == 200, good.text
    engine.calls.clear()
    return error


@pytest.fixture
async def app_on(tmp_cache: Path) -> Any:
    engine = ScriptedEngine(max_model_len=512)
    async with serving(make_settings(tmp_cache), engine) as running:
        yield running.http, engine


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, CREATIVE])
@pytest.mark.parametrize("field", UNSUPPORTED)
async def test_each_unsupported_openai_field_is_refused_by_name(
    app_on: Any, path: str, field: str
) -> None:
    http, engine = app_on
    error = await refused_then_still_serving(
        http, engine, path, with_fields(path, **{field: UNSUPPORTED_VALUES[field]})
    )
    assert error["param"] == field
    assert "not supported" in error["message"]


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, CREATIVE])
async def test_unsupported_fields_sent_as_null_ask_for_nothing(app_on: Any, path: str) -> None:
    http, _ = app_on
    nulls = dict.fromkeys(UNSUPPORTED)
    response = await http.post(path, content=with_fields(path, **nulls), headers=JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        (CHAT, {"stream": "yes"}, "stream"),
        (CHAT, {"stream": 1}, "stream"),
        (CHAT, {"n": True}, "n"),
        (CHAT, {"n": "2"}, "n"),
        (CHAT, {"n": 1.5}, "n"),
        (CHAT, {"temperature": False}, "temperature"),
        (CHAT, {"temperature": "0.5"}, "temperature"),
        (CHAT, {"top_p": [0.5]}, "top_p"),
        (CHAT, {"max_tokens": 8.5}, "max_tokens"),
        (CHAT, {"seed": "7"}, "seed"),
        (CHAT, {"logprobs": "true"}, "logprobs"),
        (CHAT, {"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        (CHAT, {"user": 5}, "user"),
        (CHAT, {"model": 5}, "model"),
        (CHAT, {"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (CHAT, {"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        (
            CHAT,
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages.0.content",
        ),
        (CHAT, {"stop": ["a", 1]}, "stop"),
        (COMPLETIONS, {"echo": "false"}, "echo"),
        (COMPLETIONS, {"logprobs": True}, "logprobs"),
        (COMPLETIONS, {"prompt": 7}, "prompt"),
        (COMPLETIONS, {"prompt": []}, "prompt"),
        (COMPLETIONS, {"suffix": "tail"}, "suffix"),
        (PRECISE, {"samples": "3"}, "samples"),
        (PRECISE, {"samples": True}, "samples"),
        (PRECISE, {"adaptive": "yes"}, "adaptive"),
        (PRECISE, {"min_agreement": "0.5"}, "min_agreement"),
        (PRECISE, {"tools": []}, "tools"),
        (PRECISE, {"prompt": "x"}, "body"),  # both messages and prompt
        (CHAT, {"model": f"{MODEL}:precise", "samples": True}, "samples"),
        (CHAT, {"model": f"{MODEL}:precise", "deadline_ms": "100"}, "deadline_ms"),
    ],
)
async def test_wrong_types_are_refused_not_coerced(
    app_on: Any, path: str, fields: dict[str, Any], param: str
) -> None:
    http, engine = app_on
    error = await refused_then_still_serving(http, engine, path, with_fields(path, **fields))
    assert error["param"] == param


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        (CHAT, {"temperature": 1}),  # an integer is a number
        (CHAT, {"n": 2.0, "max_tokens": 8e0}),  # and an integral number is an integer (JSON)
        (CHAT, {"top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1}),  # vendor extras: ignored
        (CREATIVE, {"top_k": 5}),
        (COMPLETIONS, {"prompt": ["a", "b"], "suffix": ""}),
        (CHAT, {"model": f"{MODEL}:precise", "samples": 3, "answer_format": "text"}),
        (COMPLETIONS, {"model": f"{MODEL}:precise", "prompt": ["one"], "samples": 2}),
        (CHAT, {"stop": ["a", "b", "c", "d"]}),
    ],
)
async def test_what_the_contract_allows_is_served(
    app_on: Any, path: str, fields: dict[str, Any]
) -> None:
    http, _ = app_on
    response = await http.post(path, content=with_fields(path, **fields), headers=JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "fields", "param", "words"),
    [
        (CHAT, {"model": f"{MODEL}:precise", "sampels": 3}, "sampels", "not a precise option"),
        (COMPLETIONS, {"model": f"{MODEL}:precise", "top_k": 3}, "top_k", "not a precise option"),
        (CHAT, {"samples": 3}, "samples", "precise-mode option"),
        (CREATIVE, {"answer_format": "number"}, "answer_format", "precise-mode option"),
        (COMPLETIONS, {"adaptive": True}, "adaptive", "precise-mode option"),
        (PRECISE, {"sampels": 3}, "sampels", "Extra inputs"),
        (COMPLETIONS, {"model": f"{MODEL}:precise", "prompt": ["a", "b"]}, "prompt", "one"),
        (CHAT, {"model": f"{MODEL}:precise", "n": 2}, "n", "use samples"),
        (CHAT, {"max_tokens": 10_000, "max_completion_tokens": 8}, "max_tokens", "at most"),
    ],
)
async def test_options_that_would_be_ignored_are_refused(
    app_on: Any, path: str, fields: dict[str, Any], param: str, words: str
) -> None:
    http, engine = app_on
    error = await refused_then_still_serving(http, engine, path, with_fields(path, **fields))
    assert error["param"] == param
    assert words in error["message"]


def deep(depth: int) -> bytes:
    return b'{"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "x": ' + (
        b"[" * depth + b"]" * depth + b"}"
    )


CHAT_HEAD = b'{"model": "test-model", "messages": [{"role": "user", "content": '


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (deep(5000), None, "nested deeper than 64 levels"),
        (deep(100_000), None, "nested deeper than 64 levels"),
        (b"[" * 400_000, None, "nested deeper"),
        (CHAT_HEAD + b'"\\ud800"}]}', "messages.0.content", "lone surrogate"),
        (CHAT_HEAD + b'"hi"}], "model": "\\udfff"}', "model", "lone surrogate"),
        (CHAT_HEAD + b'"hi"}], "stop": ["ok", "\\ud800"]}', "stop.1", "lone surrogate"),
        (CHAT_HEAD + b'"hi"}], "\\ud800": 1}', "\ufffd", "lone surrogate"),
        (CHAT_HEAD + b'"hi"}], "temperature": NaN}', "temperature", "NaN is not valid JSON"),
        (CHAT_HEAD + b'"hi"}], "temperature": Infinity}', "temperature", "Infinity"),
        (CHAT_HEAD + b'"hi"}], "presence_penalty": -Infinity}', "presence_penalty", "Infinity"),
        (CHAT_HEAD + b'"hi"}], "max_tokens": 1e400}', "max_tokens", "out of range"),
        (CHAT_HEAD + b'"hi"}], "n": ' + str(10**100).encode() + b"}", "n", "out of range"),
        (CHAT_HEAD + b'"hi"}], "seed": ' + str(2**64).encode() + b"}", "seed", "less than"),
        (CHAT_HEAD + b'"\xff"}]}', None, "not valid UTF-8: byte 0xff at line 1 column 67"),
        (b"{not json", None, "not valid JSON: Expecting property name"),
        (b'{"model": "test-model",\n "messages": [}', None, "at line 2 column 15"),
        (b'["a list"]', "body", "valid dictionary"),
        (b"null", "body", "Field required"),
    ],
)
async def test_client_input_that_breaks_json_is_a_400_never_a_500(
    app_on: Any, body: bytes, param: str | None, words: str
) -> None:
    http, engine = app_on
    error = await refused_then_still_serving(http, engine, CHAT, body)
    assert error["param"] == param
    assert words in error["message"], error["message"]
    if param is None and "nested" not in words:
        assert error["message"].startswith("the request body is not valid")


async def test_a_body_that_is_not_declared_json_is_still_refused_cleanly(app_on: Any) -> None:
    http, engine = app_on
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        response = await http.post(CHAT, content=deep(5000), headers={"content-type": content_type})
        assert_openai_error(response, 400)
    assert engine.calls == []
    assert (await http.get("/health")).status_code == 200


async def test_the_schema_states_this_servers_caps(tmp_cache: Path) -> None:
    settings = make_settings(
        tmp_cache,
        max_n=3,
        max_samples=5,
        max_tokens_cap=40,
        max_temperature=1.2,
        max_top_p=0.9,
    )
    async with serving(settings, ScriptedEngine(max_model_len=512)) as (_, http, _client):
        schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]

    def maximum(body: str, field: str, key: str = "maximum") -> Any:
        prop = schemas[body]["properties"][field]
        return next(b[key] for b in prop.get("anyOf", [prop]) if key in b)

    for body in ("ChatCompletionRequest", "CreativeRequest", "CompletionRequest"):
        assert maximum(body, "n") == 3
        assert maximum(body, "max_tokens") == 40
        assert maximum(body, "temperature") == 1.2
        assert maximum(body, "top_p") == 0.9
        for field in UNSUPPORTED:
            assert schemas[body]["properties"][field]["type"] == "null"
    assert maximum("ChatCompletionRequest", "max_completion_tokens") == 40
    assert maximum("CompletionRequest", "prompt", "maxItems") == 3
    assert maximum("PreciseRequest", "samples") == 5
    assert schemas["ChatCompletionRequest"]["required"] == ["messages", "model"]
    assert schemas["PreciseRequest"]["additionalProperties"] is False
    seed = schemas["ChatCompletionRequest"]["properties"]["seed"]["anyOf"][0]
    assert isinstance(seed["maximum"], int) and isinstance(seed["minimum"], int)


@pytest.fixture(scope="module")
def real_server(process_dir: Path) -> Iterator[ServerProcess]:
    """One ``quorum serve`` process (scripted engine) for the table below."""
    server = scripted_process(process_dir, "contract", [])
    yield server
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (deep(100_000), None),
        (CHAT_HEAD + b'"\\ud800"}]}', "messages.0.content"),
        (CHAT_HEAD + b'"hi"}], "temperature": NaN}', "temperature"),
        (CHAT_HEAD + b'"\xff"}]}', None),
        (with_fields(CHAT, tools=UNSUPPORTED_VALUES["tools"]), "tools"),
        (with_fields(CHAT, stream="yes"), "stream"),
    ],
)
def test_a_real_server_refuses_the_same_and_keeps_serving(
    real_server: ServerProcess, body: bytes, param: str | None
) -> None:
    with httpx.Client(base_url=real_server.base_url, timeout=10) as http:
        response = http.post(CHAT, content=body, headers=JSON)
        assert assert_openai_error(response, 400)["param"] == param
        assert http.get("/health").status_code == 200
        assert http.post(CHAT, json=BODIES[CHAT]).status_code == 200


async def test_a_chats_own_fields_that_are_precise_options_reach_the_vote(app_on: Any) -> None:
    http, engine = app_on
    body = {**BODIES[CHAT], "model": f"{MODEL}:precise", "samples": 2, "top_logprobs": 3}
    response = await http.post(CHAT, json={**body, "temperature": 0.4})
    assert response.status_code == 200, response.text
    (_, spec, _), *_ = engine.calls
    assert spec.logprobs == 3, "top_logprobs asked the engine for the confidence's alternatives"
    assert spec.temperature == 0.4
