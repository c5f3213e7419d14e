"""In-process API tests: the real app on a scripted engine, driven by the official client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from server.app import create_app
from server.engines.scripted import ScriptedEngine
from server.settings import Settings

MODEL = "test-model"


@pytest.fixture
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a scripted server; caps small enough to test."""
    return Settings(
        served_name=MODEL, cache_dir=tmp_path_factory.mktemp("cache"), max_n=8, max_model_len=512
    )


@pytest.fixture
def engine() -> ScriptedEngine:
    """A fresh scripted engine per test, so recorded calls are the test's own."""
    return ScriptedEngine(max_model_len=512)


@pytest.fixture
async def http(settings: Settings, engine: ScriptedEngine) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to the app in-process, its lifespan running."""
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quorum") as client:
            yield client


@pytest.fixture
async def client(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    """The official OpenAI client talking to the in-process app."""
    return openai.AsyncOpenAI(
        api_key="unused", base_url="http://quorum/v1", http_client=http, max_retries=0
    )
