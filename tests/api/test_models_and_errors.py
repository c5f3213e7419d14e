"""Model listing, mode aliases, health, and OpenAI-shaped errors that leave the server working."""

from __future__ import annotations

import httpx
import openai
import pytest

from bench.rig.openai_schema import validate
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL

MESSAGES = [{"role": "user", "content": "hi"}]


async def test_models_list_the_served_name_and_its_modes(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    validate(models.model_dump(mode="json"), "ListModelsResponse")
    assert [m.id for m in models.data] == [MODEL, f"{MODEL}:creative", f"{MODEL}:precise"]


async def test_health_and_ready(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    ready = await http.get("/ready")
    assert ready.status_code == 200 and ready.json()["model"] == MODEL


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.completions.create(model=f"{MODEL}:fast", prompt="x")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 9}, "n"),
        ({"max_tokens": 10_000}, "max_tokens"),
        ({"max_completion_tokens": 10_000}, "max_completion_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"top_logprobs": 21}, "top_logprobs"),
    ],
)
async def test_out_of_bounds_fields_are_400_naming_the_field(
    client: openai.AsyncOpenAI, engine: ScriptedEngine, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES, **extra)  # type: ignore[call-overload]
    assert caught.value.status_code == 400
    validate(caught.value.body and {"error": caught.value.body}, "ErrorResponse")
    assert caught.value.param == param
    assert engine.calls == [], "the engine must not be touched"
    ok = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert ok.choices[0].message.content


async def test_context_overflow_names_max_tokens(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "w " * 300}], max_tokens=300
        )
    assert caught.value.param == "max_tokens"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"model": "test-model"}',
        b'{"model": "test-model", "messages": [{"role": "wizard", "content": "x"}]}',
    ],
)
async def test_malformed_bodies_are_400_not_422(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in response.text and "/server/" not in response.text


async def test_huge_malformed_array_gives_a_small_error(http: httpx.AsyncClient) -> None:
    body = b'{"model": "test-model", "messages": [' + b"1," * 500_000 + b"1]}"
    response = await http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert len(response.content) < 16_384


async def test_unknown_route_and_method_are_openai_shaped(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await http.get("/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()
