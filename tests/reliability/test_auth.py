"""With keys configured every inference route needs a bearer key, checked on the ASGI
path in constant time; probes stay open; CORS is off unless origins are configured, and never
allows credentials. (Host-header and request-target tricks over a real socket:
``test_processes.py``.)"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import SecretStr

from server.api.middleware import auth
from server.api.middleware.auth import AuthMiddleware, bearer_token
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, AsgiCall, make_settings

KEYS = ["sk-first-key-123", "sk-second-key-456"]
INFERENCE = [
    ("GET", "/v1/models", None),
    ("POST", CHAT, {"model": MODEL, "messages": MESSAGES}),
    ("POST", "/v1/completions", {"model": MODEL, "prompt": "hi"}),
    ("POST", "/v1/creative", {"messages": MESSAGES}),
    ("POST", "/v1/precise", {"messages": MESSAGES}),
    ("POST", CHAT, {"model": f"{MODEL}:precise", "messages": MESSAGES}),
    ("POST", CHAT, {"model": f"{MODEL}:creative", "messages": MESSAGES}),
]


def _settings(tmp: Path, **extra: Any) -> Any:
    return make_settings(tmp, api_keys=[SecretStr(k) for k in KEYS], **extra)


@pytest.mark.parametrize(("method", "path", "body"), INFERENCE)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Basic {KEYS[0]}",
        f"Bearer {KEYS[0]}x",
        KEYS[0],
        f"Bearer {KEYS[0][:-1]}",
    ],
)
async def test_missing_or_wrong_key_is_an_openai_401(
    tmp_cache: Path, method: str, path: str, body: Any, authorization: str | None
) -> None:
    engine = ScriptedEngine()
    async with serving(_settings(tmp_cache), engine) as (_, http, _client):
        headers = {} if authorization is None else {"authorization": authorization}
        response = await http.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key"
    assert KEYS[0] not in response.text
    assert engine.calls == []


@pytest.mark.parametrize("key", KEYS)
async def test_every_configured_key_works_through_the_official_client(
    tmp_cache: Path, key: str
) -> None:
    async with serving(_settings(tmp_cache), ScriptedEngine()) as (_, http, _client):
        client = openai.AsyncOpenAI(
            api_key=key, base_url="http://quorum/v1", http_client=http, max_retries=0
        )
        assert (await client.models.list()).data[0].id == MODEL
        reply = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
        precise = await http.post(
            "/v1/precise",
            json={"messages": MESSAGES},
            headers={"authorization": f"bearer {key}"},  # the scheme is case-insensitive
        )
        assert precise.status_code == 200
        wrong = openai.AsyncOpenAI(
            api_key="sk-nope", base_url="http://quorum/v1", http_client=http, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()


async def test_probes_are_open_and_everything_else_is_closed(tmp_cache: Path) -> None:
    async with serving(_settings(tmp_cache), ScriptedEngine()) as (_, http, _client):
        for path in ("/health", "/ready", "/metrics", "/openapi.json"):
            assert (await http.get(path)).status_code == 200, path
        # Deny by default: unknown paths and odd spellings of the API need a key too.
        for path in (
            "/v1/nothing",
            "/V1/models",
            "/v1/models/",
            "/v1//models",
            "/health/",
            "/health/../v1/models",
            "/v1/%6dodels",
            "/",
        ):
            response = await http.get(path)
            assert response.status_code == 401, path


@pytest.mark.parametrize(
    "path",
    ["//v1/models", "/v1/models", "/./v1/models", "/v1/models?", "/health/../v1/models"],
)
async def test_the_asgi_path_decides_not_the_host_header(tmp_cache: Path, path: str) -> None:
    async with serving(_settings(tmp_cache), ScriptedEngine()) as (app, _http, _client):
        call = AsgiCall(
            app,
            path,
            {"model": MODEL, "messages": MESSAGES},
            headers=[(b"host", b"localhost/v1/models?"), (b"x-forwarded-host", b"/health")],
        )
        await call.task
        assert call.status == 401


def test_keys_are_compared_in_constant_time() -> None:
    source = inspect.getsource(auth)
    assert "hmac.compare_digest" in source
    middleware = AuthMiddleware(lambda *a: None, [SecretStr(k) for k in KEYS])  # type: ignore[arg-type]
    # Every key is compared (no early exit), on equal-length digests.
    assert middleware.accepts(KEYS[1].encode())
    assert not middleware.accepts(None)
    assert not middleware.accepts(b"")
    assert bearer_token(b"Bearer  sk-x ") == b"sk-x"
    assert bearer_token(b"Token sk-x") is None


async def test_no_keys_means_no_auth(tmp_cache: Path) -> None:
    async with serving(make_settings(tmp_cache), ScriptedEngine()) as (_, http, _client):
        assert (await http.get("/v1/models")).status_code == 200


async def test_cors_is_off_unless_configured(tmp_cache: Path) -> None:
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with serving(make_settings(tmp_cache), ScriptedEngine()) as (_, http, _client):
        response = await http.options(CHAT, headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        plain = await http.get("/v1/models", headers={"origin": "https://app.example"})
        assert "access-control-allow-origin" not in plain.headers


@pytest.mark.parametrize("origins", [["https://app.example"], ["*"]])
async def test_cors_when_configured_never_allows_credentials(
    tmp_cache: Path, origins: list[str]
) -> None:
    settings = _settings(tmp_cache, cors_origins=origins)
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with serving(settings, ScriptedEngine()) as (_, http, _client):
        response = await http.options(CHAT, headers=preflight)
        assert response.status_code == 200, "a preflight carries no key and must not be 401"
        assert response.headers["access-control-allow-origin"] in ("https://app.example", "*")
        assert "access-control-allow-credentials" not in response.headers
        actual = await http.post(
            CHAT,
            json={"model": MODEL, "messages": MESSAGES},
            headers={"origin": "https://app.example", "authorization": f"Bearer {KEYS[0]}"},
        )
        assert actual.status_code == 200
        assert "access-control-allow-credentials" not in actual.headers
        unauthenticated = await http.post(
            CHAT, json={"model": MODEL}, headers={"origin": "https://app.example"}
        )
        assert unauthenticated.status_code == 401
        other = await http.options(CHAT, headers={**preflight, "origin": "https://evil.example"})
        if origins != ["*"]:
            assert "access-control-allow-origin" not in other.headers
