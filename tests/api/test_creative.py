"""Creative mode: its defaults fill only what the client left unset."""

from __future__ import annotations

import httpx
import openai
import pytest

from bench.rig.openai_schema import validate
from decoding.creative import CREATIVE_DEFAULTS
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL

MESSAGES = [{"role": "user", "content": "a poem"}]


async def test_creative_route_applies_defaults_and_returns_chat_completion(
    http: httpx.AsyncClient, engine: ScriptedEngine
) -> None:
    response = await http.post("/v1/creative", json={"messages": MESSAGES, "n": 2, "seed": 11})
    assert response.status_code == 200
    body = response.json()
    validate(body, "CreateChatCompletionResponse")
    assert len(body["choices"]) == 2
    spec = engine.calls[0][1]
    assert spec.temperature == CREATIVE_DEFAULTS.temperature
    assert spec.top_p == CREATIVE_DEFAULTS.top_p
    assert spec.presence_penalty == CREATIVE_DEFAULTS.presence_penalty
    assert (spec.n, spec.seed) == (2, 11)


async def test_creative_alias_uses_the_same_defaults(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    await client.chat.completions.create(model=f"{MODEL}:creative", messages=MESSAGES)
    assert engine.calls[0][1].temperature == CREATIVE_DEFAULTS.temperature


async def test_client_values_win_over_creative_defaults(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    await client.chat.completions.create(
        model=f"{MODEL}:creative",
        messages=MESSAGES,
        temperature=0.2,
        top_p=0.7,
        presence_penalty=0,
    )
    spec = engine.calls[0][1]
    assert (spec.temperature, spec.top_p, spec.presence_penalty) == (0.2, 0.7, 0.0)


@pytest.mark.parametrize("model", ["other", f"{MODEL}:precise"])
async def test_creative_route_refuses_other_models(http: httpx.AsyncClient, model: str) -> None:
    response = await http.post("/v1/creative", json={"model": model, "messages": MESSAGES})
    assert response.status_code in (400, 404)
    assert "error" in response.json()


async def test_creative_streams(http: httpx.AsyncClient) -> None:
    async with http.stream(
        "POST", "/v1/creative", json={"messages": MESSAGES, "stream": True}
    ) as r:
        lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert len(lines) > 3
