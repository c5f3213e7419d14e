"""Items 1 and 2: bad input gets OpenAI-shaped errors with the right status, the engine untouched.

400 (never 422) naming the field, bounded messages, no traces; the context window, unknown
models, every configured cap; 413 for big bodies before anything parses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from bench.rig.openai_schema import validate
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, make_settings

ERROR_KEYS = {"message", "type", "param", "code"}


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an OpenAI error body with this status, and leaks nothing."""
    assert response.status_code == status, response.text
    body = response.json()
    validate(body, "ErrorResponse")
    assert set(body["error"]) == ERROR_KEYS
    assert len(response.content) < 16_384
    for leak in ("Traceback", 'File "', "/server/", ".py"):
        assert leak not in response.text
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b'{"model": "test-model", "messages": []}', "messages"),
        (b'{"model": "test-model", "messages": [{"role": "user", "content": 5}]}', "messages"),
        (b'{"model": "test-model", "messages": [{"role": "user"}], "n": "many"}', "n"),
        (b'{"model": "test-model", "messages": [' + b'"x",' * 200_000 + b'"x"]}', "messages"),
    ],
)
async def test_validation_is_400_naming_the_field_bounded_and_traceless(
    tmp_cache: Path, body: bytes, param: str | None
) -> None:
    engine = ScriptedEngine(max_model_len=512)
    async with serving(make_settings(tmp_cache), engine) as (_, http, client):
        response = await http.post(CHAT, content=body, headers={"content-type": "application/json"})
        error = assert_openai_error(response, 400)
        assert error["type"] == "invalid_request_error"
        if param is not None:
            assert str(error["param"]).startswith(param)
        assert engine.calls == []
        ok = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        assert ok.choices[0].message.content


async def test_openapi_documents_400_not_422(tmp_cache: Path) -> None:
    async with serving(make_settings(tmp_cache), ScriptedEngine()) as (_, http, _client):
        schema = (await http.get("/openapi.json")).json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], f"{method} {path}"
    chat = schema["paths"][CHAT]["post"]["responses"]
    assert {"400", "401", "413", "429", "503", "504"} <= set(chat)


async def test_max_tokens_past_the_window_names_max_tokens_with_both_numbers(
    tmp_cache: Path,
) -> None:
    # Prompt + max_tokens past the window is checked by the engine adapter with the prompt's
    # token count (tests/reliability/test_real_engine.py); max_tokens alone past it, here.
    engine = ScriptedEngine()
    async with serving(make_settings(tmp_cache), engine) as (_, http, _client):
        response = await http.post(
            CHAT, json={"model": MODEL, "messages": MESSAGES, "max_tokens": 600}
        )
    error = assert_openai_error(response, 400)
    assert error["param"] == "max_tokens"
    assert "511" in error["message"] and "600" in error["message"]
    assert engine.calls == []


async def test_unknown_model_is_404(tmp_cache: Path) -> None:
    engine = ScriptedEngine()
    async with serving(make_settings(tmp_cache), engine) as (_, http, _client):
        response = await http.post(CHAT, json={"model": "gpt-4", "messages": MESSAGES})
    assert assert_openai_error(response, 404)["code"] == "model_not_found"
    assert engine.calls == []


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        (CHAT, {"n": 5}, "n"),
        (CHAT, {"max_tokens": 65}, "max_tokens"),
        (CHAT, {"temperature": 1.5}, "temperature"),
        (CHAT, {"top_p": 0.95}, "top_p"),
        ("/v1/creative", {"temperature": 1.01}, "temperature"),
        ("/v1/completions", {"top_p": 0.91}, "top_p"),
        ("/v1/precise", {"samples": 5}, "samples"),
        ("/v1/precise", {"samples": 3, "temperature": 1.2}, "temperature"),
        (CHAT, {"model": f"{MODEL}:precise", "samples": 5}, "samples"),
    ],
)
async def test_configured_caps_are_400_naming_the_field(
    tmp_cache: Path, path: str, extra: dict[str, Any], param: str
) -> None:
    settings = make_settings(
        tmp_cache,
        max_n=4,
        max_samples=4,
        max_tokens_cap=64,
        default_max_tokens=32,
        max_temperature=1.0,
        max_top_p=0.9,
    )
    engine = ScriptedEngine(max_model_len=512)
    body: dict[str, Any] = {"model": MODEL, **extra}
    if path == "/v1/completions":
        body["prompt"] = "hi"
    else:
        body["messages"] = MESSAGES
    if path == "/v1/precise":
        body.pop("model")
    async with serving(settings, engine) as (_, http, client):
        response = await http.post(path, json=body)
        error = assert_openai_error(response, 400)
        assert error["param"] == param
        assert engine.calls == []
        within = await client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            n=4,
            temperature=1.0,
            top_p=0.9,
            max_tokens=64,
        )
        assert len(within.choices) == 4


async def test_body_over_the_limit_is_413_before_parsing(tmp_cache: Path) -> None:
    engine = ScriptedEngine()
    settings = make_settings(tmp_cache, max_body_bytes=4096)
    async with serving(settings, engine) as (_, http, client):
        # Invalid JSON past the limit: a parser would say 400; the limit speaks first.
        big = b"{" + b"x" * 5000
        declared = await http.post(CHAT, content=big, headers={"content-type": "application/json"})
        assert assert_openai_error(declared, 413)["code"] == "payload_too_large"

        async def chunks() -> Any:
            for _ in range(10):
                yield b"y" * 1000  # chunked: no Content-Length to trust

        streamed = await http.post(
            CHAT, content=chunks(), headers={"content-type": "application/json"}
        )
        assert_openai_error(streamed, 413)
        assert engine.calls == []
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "z" * 5000}],
            )
        assert caught.value.status_code == 413
        ok = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        assert ok.choices[0].message.content
