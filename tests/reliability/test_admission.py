"""Past the configured cap of samples running or queued, 429 at once; admitted work
finishes. An n-sample (or samples=N) request counts N. A full server refuses before reading the
body; otherwise the body is weighed first. Auth comes first."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest
from pydantic import SecretStr

from server.api.admission import request_weight
from server.runtime.admission import Admission
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, AsgiCall, make_settings, paced, until, words
from tests.reliability.test_observability import samples_of


def test_weights_count_samples(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_n=8, max_samples=6)
    assert request_weight(CHAT, {"n": 3}, settings) == 3
    assert request_weight(CHAT, {}, settings) == 1
    assert request_weight(CHAT, {"model": f"{MODEL}:precise", "samples": 5}, settings) == 5
    assert request_weight("/v1/precise", {"samples": 4}, settings) == 4
    assert request_weight("/v1/precise", {}, settings) == 1
    assert request_weight("/v1/completions", {"prompt": ["a", "b"], "n": 2}, settings) == 4
    # Past the caps (refused later with 400) or nonsense: bounded, never an error here.
    assert request_weight("/v1/precise", {"samples": 10**9}, settings) == 6
    assert request_weight(CHAT, {"n": "many"}, settings) == 1
    assert request_weight(CHAT, {"n": True}, settings) == 1


def test_admission_is_all_or_nothing() -> None:
    admission = Admission(4)
    assert admission.try_acquire(3)
    assert not admission.try_acquire(2)
    assert admission.try_acquire(1)
    admission.release(3)
    admission.release(1)
    assert admission.in_use == 0
    assert admission.try_acquire(100)  # bigger than the cap: admitted alone, as the cap
    assert not admission.try_acquire(1)


async def test_over_capacity_is_429_at_once_and_admitted_work_finishes(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    settings = make_settings(tmp_cache, max_inflight_samples=4, retry_after_s=2)
    async with serving(settings, engine) as (app, http, client):
        long = asyncio.create_task(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": words(40)}], n=3
            )
        )
        await until(lambda: engine.active == 1)
        assert app.state.admission.in_use == 3

        refused = await http.post(CHAT, json={"model": MODEL, "messages": MESSAGES, "n": 2})
        assert not long.done() and engine.active == 1, "the refusal did not wait for capacity"
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "overloaded"
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                model=f"{MODEL}:precise",
                messages=MESSAGES,  # type: ignore[arg-type]
                extra_body={"samples": 2},
            )
        with pytest.raises(openai.RateLimitError):
            await client.completions.create(model=MODEL, prompt=["a", "b"])

        fits = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        assert fits.choices[0].message.content

        finished = await long
        assert len(finished.choices) == 3
        assert all(c.finish_reason == "stop" for c in finished.choices)
        assert app.state.admission.in_use == 0
        again = await client.chat.completions.create(model=MODEL, messages=MESSAGES, n=2)  # type: ignore[arg-type]
        assert len(again.choices) == 2
        metrics = (await http.get("/metrics")).text
        assert 'quorum_rejections_total{reason="overloaded"} 3.0' in metrics


async def test_streams_hold_their_samples_until_the_last_byte(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    settings = make_settings(tmp_cache, max_inflight_samples=2)
    async with serving(settings, engine) as (app, _http, _client):
        body = {"model": MODEL, "messages": [{"role": "user", "content": words(20)}]}
        call = AsgiCall(app, CHAT, {**body, "n": 2, "stream": True})
        await until(lambda: b"content" in call.body)
        assert app.state.admission.in_use == 2, "a streaming response holds its samples"
        await asyncio.wait_for(call.task, 5)
        assert call.body.endswith(b"data: [DONE]\n\n")
        assert app.state.admission.in_use == 0


async def test_a_full_server_refuses_before_reading_the_body(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    settings = make_settings(tmp_cache, max_inflight_samples=2, retry_after_s=3)
    async with serving(settings, engine) as (app, http, _client):
        body = {"model": MODEL, "messages": [{"role": "user", "content": words(40)}], "n": 2}
        long = AsgiCall(app, CHAT, body)
        await until(lambda: engine.active == 1)
        assert app.state.admission.in_use == 2

        refused = [
            AsgiCall(app, path, {"model": MODEL, "messages": MESSAGES})
            for path in (CHAT, "/v1/precise", "/v1/completions")
        ]
        waiting = AsgiCall(app, CHAT, {"model": MODEL}, headers=[(b"expect", b"100-continue")])
        await asyncio.wait_for(asyncio.gather(*(c.task for c in [*refused, waiting])), 5)
        for call in [*refused, waiting]:
            assert call.status == 429
            assert not call.body_read, "a full server read the body of a request it refused"
            start = next(m for m in call.messages if m["type"] == "http.response.start")
            headers = dict(start["headers"])
            assert headers[b"retry-after"] == b"3"
            assert json.loads(call.body)["error"]["code"] == "overloaded"
            # The connection is kept (the server skips the unread body), unless the client
            # waits for 100 Continue before it sends a body that would then never come.
            closes = headers.get(b"connection") == b"close"
            assert closes == (call is waiting)
        assert not long.task.done(), "the refusals did not wait for capacity"

        await asyncio.wait_for(long.task, 10)
        assert long.status == 200 and app.state.admission.in_use == 0
        found = samples_of((await http.get("/metrics")).text)
    rejected = (
        "quorum_requests_total",
        (("mode", "precise"), ("route", "/v1/precise"), ("status", "429")),
    )
    assert found[rejected] == 1, "the route still names the mode of an unread request"
    assert found[("quorum_rejections_total", (("reason", "overloaded"),))] == 4


async def test_a_request_that_does_not_fit_is_weighed_then_refused(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    settings = make_settings(tmp_cache, max_inflight_samples=3)
    async with serving(settings, engine) as (app, _http, _client):
        body = {"model": MODEL, "messages": [{"role": "user", "content": words(40)}], "n": 2}
        long = AsgiCall(app, CHAT, body)
        await until(lambda: engine.active == 1)
        call = AsgiCall(app, CHAT, {"model": MODEL, "messages": MESSAGES, "n": 2})
        await asyncio.wait_for(call.task, 5)
        assert call.status == 429 and call.body_read
        start = next(m for m in call.messages if m["type"] == "http.response.start")
        assert b"connection" not in dict(start["headers"]), "a read body keeps the connection"
        await asyncio.wait_for(long.task, 10)
        assert app.state.admission.in_use == 0


async def test_auth_runs_before_admission(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    key = "sk-admission-key"
    settings = make_settings(tmp_cache, max_inflight_samples=1, api_keys=[SecretStr(key)])
    async with serving(settings, engine) as (app, _http, _client):
        authorized = [(b"authorization", f"Bearer {key}".encode())]
        body = {"model": MODEL, "messages": [{"role": "user", "content": words(40)}]}
        long = AsgiCall(app, CHAT, body, headers=authorized)
        await until(lambda: engine.active == 1)
        anonymous = AsgiCall(app, CHAT, body)
        known = AsgiCall(app, CHAT, body, headers=authorized)
        await asyncio.wait_for(asyncio.gather(anonymous.task, known.task), 5)
        assert anonymous.status == 401, "a full server must not tell strangers it is full"
        assert known.status == 429
        await asyncio.wait_for(long.task, 10)
