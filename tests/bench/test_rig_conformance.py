"""The conformance checks without an engine: Quorum in-process on a scripted engine passes all
fourteen, and the same server made to break one promise at a time (by a transport that edits
requests or answers on the way) fails exactly the checks of that promise, saying why."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from bench.rig.conformance_checks import CHECKS
from bench.rig.conformance_kit import Outcome, Target, run_checks
from decoding.engine import Prompt, SamplingSpec
from decoding.samples import GenerationChunk
from server.engines.scripted import ScriptedEngine
from tests.inprocess import BASE_URL, MODEL, make_settings, serving

EditRequest = Callable[[str, dict[str, Any]], dict[str, Any]]
EditAnswer = Callable[[httpx.Request, int, bytes], tuple[int, bytes]]


class TopLogprobsEngine(ScriptedEngine):
    """The scripted engine with as many alternatives per token as asked (the plain one gives
    one at most), so that a conforming server passes the logprobs check."""

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        """The scripted chunks, each token's alternatives padded to ``spec.logprobs``."""
        async for chunk in super().generate(prompt, spec, stream=stream):
            for delta in chunk.deltas:
                delta.logprobs = delta.logprobs and [
                    dataclasses.replace(t, top=alternatives(t.token, spec.logprobs or 0))
                    for t in delta.logprobs
                ]
            yield chunk


def alternatives(token: str, count: int) -> tuple[tuple[str, float], ...]:
    """``count`` alternatives to a token, the token itself first, as an engine ranks them."""
    return tuple((token if i == 0 else f"{token}~{i}", -0.5 - i) for i in range(count))


def json_or_none(content: bytes) -> Any:
    """A body's JSON, or None when it is not JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return None


class Breaking(httpx.AsyncBaseTransport):
    """Forwards to the app, editing JSON requests and whole answers on the way."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        request: EditRequest | None = None,
        answer: EditAnswer | None = None,
    ) -> None:
        self.inner, self.edit_request, self.edit_answer = inner, request, answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """One exchange, edited."""
        body = json_or_none(request.content)
        if self.edit_request is not None and isinstance(body, dict):
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            content = json.dumps(self.edit_request(request.url.path, body)).encode()
            request = httpx.Request(request.method, request.url, headers=headers, content=content)
        response = await self.inner.handle_async_request(request)
        if self.edit_answer is None:
            return response
        status, content = self.edit_answer(request, response.status_code, await response.aread())
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        return httpx.Response(status, headers=headers, content=content, request=request)


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """Quorum in-process on the scripted engine, its lifespan running, for the whole module."""
    settings = make_settings(tmp_path_factory.mktemp("cache"))
    async with serving(settings, TopLogprobsEngine(max_model_len=512)) as running:
        yield running.app


@asynccontextmanager
async def target(transport: httpx.AsyncBaseTransport) -> AsyncIterator[Target]:
    """Raw HTTP and the official client, both through ``transport``."""
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        client = openai.AsyncOpenAI(
            api_key="unused", base_url=f"{BASE_URL}/v1", http_client=http, max_retries=0
        )
        yield Target(http, client, MODEL)


def failed(outcomes: list[Outcome]) -> dict[str, str]:
    """The failed checks and their reasons."""
    return {o.key: o.reason for o in outcomes if not o.passed}


async def test_quorum_in_process_passes_every_check(app: FastAPI) -> None:
    async with target(httpx.ASGITransport(app=app)) as quorum:
        outcomes = await run_checks(quorum, CHECKS)
    assert [o.key for o in outcomes] == [check.key for check in CHECKS]
    assert failed(outcomes) == {}


async def test_a_server_that_is_down_fails_every_check_with_the_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with target(httpx.MockTransport(refuse)) as down:
        found = failed(await run_checks(down, CHECKS))
    assert len(found) == len(CHECKS)
    assert all(why.startswith("error: ") and "Connect" in why for why in found.values()), found


def without(*fields: str) -> EditRequest:
    """A server that drops ``fields`` of every request before reading it."""
    return lambda path, body: {k: v for k, v in body.items() if k not in fields}


def served_as_own(request_path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A server that serves any model name as its own."""
    return body | {"model": MODEL}


def edit_json(edit: Callable[[Any], object], path: str, status: int = 200) -> EditAnswer:
    """A server whose JSON answers to ``path`` with ``status`` are changed by ``edit``."""

    def answer(request: httpx.Request, code: int, body: bytes) -> tuple[int, bytes]:
        payload = json_or_none(body)
        if code != status or not request.url.path.endswith(path) or payload is None:
            return code, body
        edit(payload)
        return code, json.dumps(payload).encode()

    return answer


def drop_bytes(payload: dict[str, Any]) -> None:
    """Token logprobs without their ``bytes``."""
    for token in (payload["choices"][0].get("logprobs") or {}).get("content") or []:
        token.pop("bytes")


def numeric_code(request: httpx.Request, code: int, body: bytes) -> tuple[int, bytes]:
    """Errors whose ``code`` is the HTTP status as a number, as vLLM's are."""
    payload = json_or_none(body)
    if code < 400 or not isinstance(payload, dict) or "error" not in payload:
        return code, body
    payload["error"]["code"] = code
    return code, json.dumps(payload).encode()


def no_done(request: httpx.Request, code: int, body: bytes) -> tuple[int, bytes]:
    """A stream that ends without ``data: [DONE]``."""
    return code, body.replace(b"data: [DONE]\n\n", b"")


def no_completions(request: httpx.Request, code: int, body: bytes) -> tuple[int, bytes]:
    """A server with no legacy completions route."""
    missing = request.url.path.endswith("/v1/completions")
    return (404, b'{"detail": "Not Found"}') if missing else (code, body)


def unprocessable(request: httpx.Request, code: int, body: bytes) -> tuple[int, bytes]:
    """FastAPI's default: 422, not 400, for a body that is not JSON."""
    return (422 if code == 400 and json_or_none(request.content) is None else code), body


BROKEN: list[tuple[str, EditRequest | None, EditAnswer | None, set[str], str]] = [
    # a body's schema is the chat check's business; the sampling checks read their fields
    ("chat completions without created",
     None, edit_json(lambda p: p.pop("created"), "/chat/completions"),
     {"chat"}, "'created' is a required property"),
    ("logprobs without bytes", None, edit_json(drop_bytes, "/chat/completions"),
     {"logprobs"}, "'bytes' is a required property"),
    ("no [DONE]", None, no_done, {"stream"}, "[DONE]"),
    ("stream_options ignored", without("stream_options"), None, {"stream-usage"}, "choices"),
    ("no completions route", None, no_completions, {"completion"}, "HTTP 404"),
    ("models list without object",
     None, edit_json(lambda p: p.pop("object"), "/models"), {"models"}, "'object'"),
    ("n ignored", without("n"), None, {"n"}, "indexes [0], not"),
    ("max_tokens ignored", without("max_tokens"), None, {"length"}, "finish_reason 'stop'"),
    ("stop ignored", without("stop"), None, {"stop"}, "is in the reply"),
    ("logprobs ignored", without("logprobs", "top_logprobs"), None, {"logprobs"}, "no logprobs"),
    ("every model served", served_as_own, None, {"unknown-model"}, "HTTP 200 where 404"),
    ("422 for a body that is not JSON", None, unprocessable, {"invalid-json"}, "HTTP 422"),
    ("errors without param",
     None, edit_json(lambda p: p["error"].update(param=None), "", 400),
     {"wrong-type"}, "param None"),
    # an error's shape is the error checks' business; the tools check wants the field named
    ("errors with a numeric code",
     None, numeric_code, {"unknown-model", "invalid-json", "wrong-type"}, "at error/code"),
    ("tools ignored", without("tools", "tool_choice"), None, {"tools"}, "tools ignored"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit_request", "edit_answer", "expected", "reason"),
    [row[1:] for row in BROKEN],
    ids=[row[0] for row in BROKEN],
)
async def test_a_broken_promise_fails_its_checks_and_only_them(
    app: FastAPI,
    edit_request: EditRequest | None,
    edit_answer: EditAnswer | None,
    expected: set[str],
    reason: str,
) -> None:
    transport = Breaking(httpx.ASGITransport(app=app), edit_request, edit_answer)
    async with target(transport) as broken:
        found = failed(await run_checks(broken, CHECKS))
    assert set(found) == expected, found
    assert all(reason in why for why in found.values()), found
