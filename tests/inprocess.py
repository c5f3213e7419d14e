"""The app in-process, as every in-process test drives it: its lifespan running, an httpx client
on ``httpx.ASGITransport``, and the official OpenAI client over that httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import openai
from fastapi import FastAPI

from decoding.engine import ManagedEngine
from server.api.app import create_app
from server.runtime.settings import Settings

MODEL = "test-model"
BASE_URL = "http://quorum"


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for a scripted server with small, testable caps."""
    values: dict[str, Any] = {
        "served_name": MODEL,
        "cache_dir": tmp,
        "max_n": 8,
        "max_model_len": 512,
    }
    values.update(overrides)
    return Settings(**values)


class InProcess(NamedTuple):
    """A running app and the two clients on it (unpacks as ``app, http, client``)."""

    app: FastAPI
    http: httpx.AsyncClient
    client: openai.AsyncOpenAI


@asynccontextmanager
async def serving(settings: Settings, engine: ManagedEngine) -> AsyncIterator[InProcess]:
    """The app around ``engine`` with its lifespan running, and clients wired to it."""
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            client = openai.AsyncOpenAI(
                api_key="unused", base_url=f"{BASE_URL}/v1", http_client=http, max_retries=0
            )
            yield InProcess(app, http, client)
