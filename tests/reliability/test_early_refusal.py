"""The early refusal: a full server's 429, answered before the ASGI stack, is the same reply the
stack would give, counted the same, and stands aside whenever another layer would answer.

The decision and the reply are checked here on the app's own ``EarlyRefusal``; the real-socket
path (uvicorn's protocol running it in place of the stack) in ``test_connections.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from pydantic import SecretStr
from starlette.types import Message

from server.api.app import create_app
from server.api.middleware import early_refusal
from server.api.middleware.admission import overloaded
from server.api.middleware.early_refusal import EarlyRefusal
from server.runtime.connections import EarlyReply, raw_response, reply_app
from tests.reliability.conftest import CHAT, make_settings, paced, until
from tests.reliability.test_observability import samples_of

KEY = "sk-early-test"
JSON = (b"content-type", b"application/json")
AUTHORISED = (b"authorization", f"Bearer {KEY}".encode())


def full_app(tmp: Path, **overrides: Any) -> FastAPI:
    """An app whose one sample of capacity is taken, serving."""
    app = create_app(make_settings(tmp, max_inflight_samples=1, **overrides), paced())
    app.state.lifecycle.ready = True
    app.state.admission.in_use = 1
    return app


def refusal(app: FastAPI) -> EarlyRefusal:
    found: EarlyRefusal = app.state.early_refusal
    return found


async def reply(answer: EarlyReply | None) -> list[Message]:
    """What the early reply sends when uvicorn runs it as an app (a connection's first
    request); written straight to the socket, it is the same bytes (test_connections)."""
    assert answer is not None
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("an early refusal never reads the body")

    await reply_app(answer)({"type": "http"}, receive, send)
    return sent


# (what differs from a full, serving, open server's POST to a /v1 route) -> refused early?
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("a POST to a /v1 route", {}, True),
    ("a POST to an unknown /v1 path", {"target": b"/v1/nothing"}, True),
    ("with a query string", {"target": CHAT.encode() + b"?x=1"}, True),
    ("a GET", {"method": b"GET"}, False),
    ("a public path", {"target": b"/health"}, False),
    ("a path outside /v1", {"target": b"/v2/chat"}, False),
    ("an absolute-form target", {"target": b"http://h" + CHAT.encode()}, False),
    ("a percent-encoded path", {"target": b"/v1/chat%2Fcompletions"}, False),
    ("capacity left", {"in_use": 0}, False),
    ("draining", {"draining": True}, False),
    ("not ready yet", {"ready": False}, False),
    ("waiting for 100 Continue", {"headers": [JSON, (b"expect", b"100-Continue")]}, False),
    ("keys configured, none sent", {"keys": True}, False),
    (
        "keys configured, a wrong one",
        {"keys": True, "headers": [(b"authorization", b"Bearer x")]},
        False,
    ),
    ("keys configured, a right one", {"keys": True, "headers": [AUTHORISED]}, True),
    ("CORS configured", {"cors": True}, False),
]


@pytest.mark.parametrize(("case", "change", "refused"), CASES, ids=[c[0] for c in CASES])
def test_refused_early_only_where_the_stack_would_refuse_with_429(
    tmp_path: Path, case: str, change: dict[str, Any], refused: bool
) -> None:
    overrides: dict[str, Any] = {}
    if change.get("keys"):
        overrides["api_keys"] = [SecretStr(KEY)]
    if change.get("cors"):
        overrides["cors_origins"] = ["https://example.org"]
    app = full_app(tmp_path, **overrides)
    app.state.admission.in_use = change.get("in_use", 1)
    app.state.lifecycle.draining = change.get("draining", False)
    if change.get("ready") is False:
        app.state.lifecycle.ready = False
    answer = refusal(app)(
        change.get("method", b"POST"),
        change.get("target", CHAT.encode()),
        change.get("headers", [JSON]),
    )
    assert (answer is not None) == refused, case


async def test_the_early_reply_is_the_stacks_429_and_is_counted(tmp_path: Path) -> None:
    app = full_app(tmp_path)
    headers = [JSON, (b"x-request-id", b"client-chosen-id")]
    sent = await reply(refusal(app)(b"POST", CHAT.encode(), headers))
    start, body = sent
    assert start["status"] == 429
    got = dict(start["headers"])
    assert got[b"retry-after"] == b"1"
    assert got[b"x-request-id"] == b"client-chosen-id"
    assert int(got[b"content-length"]) == len(body["body"])
    assert json.loads(body["body"]) == overloaded(1, 1).body()
    assert body["more_body"] is False
    scraped = samples_of(generate_latest(app.state.metrics.registry).decode())
    route = (("mode", "none"), ("route", CHAT), ("status", "429"))
    assert scraped[("quorum_requests_total", route)] == 1
    assert scraped[("quorum_rejections_total", (("reason", "overloaded"),))] == 1


def test_the_raw_reply_is_a_complete_http_response(tmp_path: Path) -> None:
    answer = refusal(full_app(tmp_path))(b"POST", CHAT.encode(), [JSON])
    assert answer is not None
    raw = raw_response(answer.status, answer.headers, answer.body)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 429 Too Many Requests"
    length = next(
        v for k, _, v in (line.partition(b": ") for line in lines[1:]) if k == b"content-length"
    )
    assert int(length) == len(body) and json.loads(body) == overloaded(1, 1).body()


async def test_each_refusal_gets_its_own_request_id(tmp_path: Path) -> None:
    early = refusal(full_app(tmp_path))
    ids = set()
    for _ in range(3):
        start, _ = await reply(early(b"POST", CHAT.encode(), [JSON]))
        ids.add(dict(start["headers"])[b"x-request-id"])
    assert len(ids) == 3


async def test_a_burst_of_refusals_is_one_summary_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(early_refusal, "SUMMARY_EVERY_S", 0.05)
    early = refusal(full_app(tmp_path))
    caplog.set_level(logging.INFO, logger="quorum.access")
    await asyncio.gather(*(reply(early(b"POST", CHAT.encode(), [JSON])) for _ in range(5)))
    await until(lambda: any(r.getMessage() == "refused at capacity" for r in caplog.records))
    lines = [r for r in caplog.records if r.getMessage() == "refused at capacity"]
    assert [getattr(r, "count", None) for r in lines] == [5]


async def test_refusals_of_the_last_second_are_logged_at_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The summary timer would fire long after the app stopped: only the shutdown writes it.
    # (Timers of earlier tests share the session's loop: their lines have other counts.)
    monkeypatch.setattr(early_refusal, "SUMMARY_EVERY_S", 3600.0)
    app = full_app(tmp_path)
    early = refusal(app)
    caplog.set_level(logging.INFO, logger="quorum.access")

    def ours() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.getMessage() == "refused at capacity" and getattr(r, "count", None) == 7
        ]

    async with app.router.lifespan_context(app):
        app.state.admission.in_use = 1
        for _ in range(7):
            await reply(early(b"POST", CHAT.encode(), [JSON]))
        assert not ours()
    assert len(ours()) == 1, "written as the app stopped"
    early.flush()  # nothing left to write
    assert len(ours()) == 1
