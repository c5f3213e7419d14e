"""Every cap is checked before the first byte: a streamed request past one gets a 400 with
OpenAI's error body, never a 200 followed by an SSE error event."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL

MESSAGES = [{"role": "user", "content": "What is 2+3?"}]
# The conftest settings: max_n 8, max_samples 64 (default), context 512, temperature <= 2.
PAST_CAPS: list[tuple[dict[str, Any], str]] = [
    ({"samples": 65}, "samples"),
    ({"max_tokens": 512}, "max_tokens"),
    ({"samples": 4, "temperature": 2.5}, "temperature"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": "x" * 257}, "stop"),
    ({"min_agreement": 2}, "min_agreement"),
]
ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/precise", {"messages": MESSAGES}),
    ("/v1/chat/completions", {"model": f"{MODEL}:precise", "messages": MESSAGES}),
]


@pytest.mark.parametrize(("path", "base"), ROUTES, ids=["precise", "chat-precise"])
@pytest.mark.parametrize(("fields", "param"), PAST_CAPS, ids=[p for _, p in PAST_CAPS])
async def test_a_streamed_precise_request_past_a_cap_is_a_400(
    http: httpx.AsyncClient,
    engine: ScriptedEngine,
    path: str,
    base: dict[str, Any],
    fields: dict[str, Any],
    param: str,
) -> None:
    async with http.stream("POST", path, json={**base, **fields, "stream": True}) as response:
        body = await response.aread()
    assert response.status_code == 400, body
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert engine.calls == [], "nothing reached the engine"


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        ("/v1/chat/completions", {"model": MODEL, "n": 9}, "n"),
        ("/v1/chat/completions", {"model": MODEL, "max_tokens": 512}, "max_tokens"),
        (
            "/v1/chat/completions",
            {"model": MODEL, "max_completion_tokens": 512},
            "max_completion_tokens",
        ),
        ("/v1/creative", {"temperature": 2.5}, "temperature"),
        ("/v1/creative", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
async def test_a_streamed_chat_past_a_cap_is_a_400(
    http: httpx.AsyncClient, engine: ScriptedEngine, path: str, fields: dict[str, Any], param: str
) -> None:
    body = {"messages": MESSAGES, **fields, "stream": True}
    async with http.stream("POST", path, json=body) as response:
        await response.aread()
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert engine.calls == []


async def test_streamed_completions_past_the_batch_cap_is_a_400(
    http: httpx.AsyncClient, engine: ScriptedEngine
) -> None:
    body = {"model": MODEL, "prompt": ["a", "b", "c"], "n": 3, "stream": True}
    async with http.stream("POST", "/v1/completions", json=body) as response:
        await response.aread()
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"
    assert engine.calls == []
