"""Items 4 and 5: a client that leaves, or a request past the server's timeout, aborts every
engine request it started within a second; errors after a stream began are SSE error events
followed by ``[DONE]``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from server.errors import EngineFailed
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, AsgiCall, make_settings, paced, until, words

LONG = [{"role": "user", "content": words(200)}]  # ~200 tokens at 20 ms: 4 s of work
FULL_STEPS = 200  # engine steps the LONG generations take when nothing cuts them


def sse_events(body: bytes) -> list[str]:
    """The ``data:`` payloads of an event stream."""
    return [
        line.removeprefix("data: ")
        for line in body.decode().split("\n\n")
        if line.startswith("data: ")
    ]


@pytest.mark.parametrize(
    ("path", "body", "samples"),
    [
        (CHAT, {"model": MODEL, "messages": LONG, "n": 3}, 3),
        (CHAT, {"model": MODEL, "messages": LONG, "n": 3, "stream": True}, 3),
        ("/v1/completions", {"model": MODEL, "prompt": words(200), "max_tokens": 250}, 1),
        ("/v1/precise", {"messages": LONG, "samples": 4}, 4),
        ("/v1/precise", {"messages": LONG, "samples": 4, "stream": True}, 4),
        (CHAT, {"model": f"{MODEL}:precise", "messages": LONG, "samples": 4}, 4),
    ],
    ids=["chat", "chat-stream", "completions", "precise", "precise-stream", "precise-alias"],
)
async def test_client_disconnect_aborts_all_engine_work(
    tmp_cache: Path, path: str, body: dict[str, Any], samples: int
) -> None:
    engine = paced(token_delay_s=0.02)
    async with serving(make_settings(tmp_cache), engine) as (app, _http, _client):
        call = AsgiCall(app, path, body)
        await until(lambda: engine.active >= 1)
        assert sum(spec.n for _, spec, _ in engine.inner.calls) == samples
        call.hang_up()
        await until(lambda: engine.active == 0)
        await asyncio.wait_for(call.task, 5.0)
        assert engine.steps < FULL_STEPS, "the engine stopped before finishing the generation"
        assert engine.closed == engine.started
        assert app.state.admission.in_use == 0
        assert app.state.lifecycle.inflight == 0
        metrics = (await _http.get("/metrics")).text
        assert 'quorum_aborts_total{reason="client_disconnect"} 1.0' in metrics
        assert 'status="499"' in metrics


async def test_timeout_returns_504_and_aborts(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    settings = make_settings(tmp_cache, request_timeout_s=0.3)
    async with serving(settings, engine) as (_app, http, client):
        response = await http.post(CHAT, json={"model": MODEL, "messages": LONG, "n": 2})
        assert response.status_code == 504
        assert engine.steps < FULL_STEPS, "the timeout cut the generation"
        assert response.json()["error"]["code"] == "timeout"
        assert engine.active == 0 and engine.closed == engine.started == 1
        short = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert short.choices[0].message.content


async def test_timeout_mid_stream_is_an_sse_error_then_done(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    settings = make_settings(tmp_cache, request_timeout_s=0.3)
    async with serving(settings, engine) as (_app, http, _client):
        response = await http.post(CHAT, json={"model": MODEL, "messages": LONG, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "timeout" and error["type"] == "server_error"
    assert any("content" in e for e in events[:-2]), "tokens were streamed before the timeout"
    assert engine.active == 0


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (EngineFailed("the engine failed mid-generation"), "engine_error"),
        (RuntimeError("/secret/path.py line 3: internal detail"), "internal_error"),
    ],
)
async def test_engine_error_mid_stream_is_an_sse_error_then_done(
    tmp_cache: Path, failure: Exception, code: str
) -> None:
    engine = paced(token_delay_s=0.0)
    original = engine.inner.generate

    async def failing(*args: Any, **kwargs: Any) -> Any:
        count = 0
        async for chunk in original(*args, **kwargs):
            count += 1
            if count == 3:
                raise failure
            yield chunk

    engine.inner.generate = failing  # type: ignore[method-assign]
    async with serving(make_settings(tmp_cache), engine) as (_app, http, _client):
        response = await http.post(CHAT, json={"model": MODEL, "messages": LONG, "stream": True})
        assert response.status_code == 200
        events = sse_events(response.content)
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == code
        assert "/secret/" not in response.text and "Traceback" not in response.text
        assert sum('"content"' in e for e in events) >= 2
        engine.inner.generate = original  # type: ignore[method-assign]
        again = await http.post(CHAT, json={"model": MODEL, "messages": LONG[:1]})
        assert again.status_code == 200
