"""In-process API tests: the real app on a scripted engine, driven by the official client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from server.engines.scripted import ScriptedEngine
from server.runtime.settings import Settings
from tests.inprocess import MODEL, InProcess, make_settings, serving

__all__ = ["MODEL"]


@pytest.fixture
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a scripted server; caps small enough to test."""
    return make_settings(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def engine() -> ScriptedEngine:
    """A fresh scripted engine per test, so recorded calls are the test's own."""
    return ScriptedEngine(max_model_len=512)


@pytest.fixture
async def running(settings: Settings, engine: ScriptedEngine) -> AsyncIterator[InProcess]:
    """The app on the test's engine, its lifespan running."""
    async with serving(settings, engine) as running:
        yield running


@pytest.fixture
def http(running: InProcess) -> httpx.AsyncClient:
    """An httpx client wired to the app in-process."""
    return running.http


@pytest.fixture
def client(running: InProcess) -> openai.AsyncOpenAI:
    """The official OpenAI client talking to the in-process app."""
    return running.client
