"""Real ``quorum serve`` processes on the paced scripted engine (hidden test setting, no model):
what only real sockets and signals can show.

- SIGTERM turns readiness 503 at once, refuses new requests with 503, lets in-flight
  requests finish within the drain time (or cuts them at its end), then exits 0.
- A client that closes its socket aborts the engine work within a second.
- Host-header and request-target tricks over a raw socket cannot skip the key check.
- The logs of a real process never hold a prompt (default level) or a key (debug level).
- The load smoke test at 2x capacity: only 429/503 as errors, then normal service.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.load import chat_body, run_load, serves_normally
from tests.e2e.server_process import ServerProcess
from tests.inprocess import MODEL
from tests.reliability.conftest import CHAT, scripted_process, words

CANARY = "canary-51d2-heron-basalt"
KEY = "sk-process-canary-key-9731"
DELAY = {"QUORUM_TEST_TOKEN_DELAY_MS": "20"}


def poll(condition: object, timeout: float = 5.0) -> float:
    """Poll a zero-argument callable until it is true; seconds it took (a deadline, no sleep
    as synchronisation)."""
    assert callable(condition)
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


def metric(base_url: str, name: str, client: httpx.Client | None = None) -> float:
    """One unlabelled metric of a running server (read through ``client`` if given: a poll
    that reads often saves building a client per read on a busy machine)."""
    get = httpx.get if client is None else client.get
    for line in get(f"{base_url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def sse_events(stream: httpx.Response) -> Iterator[str]:
    """The ``data:`` payloads of an event stream, split on blank lines as SSE says (not on
    every Unicode line break, as ``iter_lines`` does: model text may hold U+2028)."""
    buffer = b""
    for chunk in stream.iter_bytes():
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if event.startswith(b"data: "):
                yield event[len(b"data: ") :].decode()


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (no client normalising the target or Host); status and reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply


@pytest.fixture
def drained(process_dir: Path) -> Iterator[ServerProcess]:
    """A scripted server with a 20 s drain; the test sends it SIGTERM."""
    server = scripted_process(process_dir, "drain", ["--drain-timeout-s", "20"], DELAY)
    yield server
    server.stop(timeout=30)


def test_sigterm_drains_in_flight_work_then_exits_cleanly(drained: ServerProcess) -> None:
    base = drained.base_url
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"{CANARY} {words(100)}"}]}
    with (
        httpx.Client(base_url=base, timeout=30) as client,
        client.stream("POST", CHAT, json={**body, "stream": True}) as stream,
    ):
        events = sse_events(stream)
        first = next(event for event in events if '"content"' in event)
        assert first.startswith("{")

        drained.process.send_signal(signal.SIGTERM)
        took = poll(lambda: httpx.get(f"{base}/ready").status_code == 503, timeout=1.0)
        assert took < 1.0
        refused = httpx.post(f"{base}{CHAT}", json=body)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "engine_unavailable"
        assert drained.process.poll() is None, "in-flight work must hold the exit"

        rest = list(events)
    assert rest[-1] == "[DONE]"
    finishes = [
        choice["finish_reason"]
        for event in rest[:-1]
        for choice in json.loads(event)["choices"]
        if choice.get("finish_reason")
    ]
    assert finishes == ["stop"], "the in-flight stream finished normally"
    assert drained.process.wait(timeout=20) == 0
    log = drained.log_path.read_text()
    assert CANARY not in log, "a prompt reached the logs at the default level"
    assert '"message": "draining"' in log


def test_drain_timeout_cuts_in_flight_work_and_still_exits_cleanly(process_dir: Path) -> None:
    server = scripted_process(process_dir, "cut", ["--drain-timeout-s", "0.5"], DELAY)
    try:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": words(200)}],
            "max_tokens": 300,
        }
        with (
            httpx.Client(base_url=server.base_url, timeout=30) as client,
            client.stream("POST", CHAT, json={**body, "stream": True}) as stream,
        ):
            events = sse_events(stream)
            next(event for event in events if '"content"' in event)
            sent = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            rest = list(events)
        assert rest[-1] == "[DONE]"
        assert json.loads(rest[-2])["error"]["code"] == "engine_unavailable"
        assert server.process.wait(timeout=10) == 0
        assert time.monotonic() - sent < 3.0, "200 tokens take 4 s: the drain cut them"
    finally:
        server.stop(timeout=10)


@pytest.fixture(scope="module")
def guarded(process_dir: Path) -> Iterator[ServerProcess]:
    """A scripted server with two keys, logging at debug level."""
    keys = json.dumps([KEY, "sk-other-key"])
    server = scripted_process(
        process_dir, "guarded", ["--log-level", "debug"], {**DELAY, "QUORUM_API_KEYS": keys}
    )
    yield server
    assert server.stop() == 0
    log = server.log_path.read_text()
    assert KEY not in log and KEY[:-2] not in log, "a key reached the logs at debug level"
    assert "sk-other-key" not in log


@pytest.mark.parametrize("streaming", [False, True])
def test_closing_the_socket_aborts_engine_work_within_a_second(
    guarded: ServerProcess, streaming: bool
) -> None:
    base = guarded.base_url
    assert metric(base, "quorum_engine_requests_active") == 0
    prompt = [{"role": "user", "content": words(150)}]  # 150 tokens at 20 ms: 3 s of work
    body = json.dumps(
        {"model": MODEL, "messages": prompt, "n": 3, "max_tokens": 200, "stream": streaming}
    ).encode()
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        poll(lambda: metric(base, "quorum_engine_requests_active") == 1)
        assert metric(base, "quorum_admitted_samples") == 3
        closed = time.monotonic()
    took = poll(lambda: metric(base, "quorum_engine_requests_active") == 0, timeout=1.0)
    assert time.monotonic() - closed < 1.0, f"engine work outlived its client by {took:.2f} s"
    poll(lambda: metric(base, "quorum_admitted_samples") == 0, timeout=1.0)


@pytest.mark.parametrize(
    "head",
    [
        "GET /v1/models HTTP/1.1\r\nHost: localhost/v1/models?\r\n",
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Host: x/health\r\n",
        "GET //v1/models HTTP/1.1\r\nHost: localhost\r\n",
        "GET /v1/%6dodels HTTP/1.1\r\nHost: localhost\r\n",
        "GET /%76%31/models HTTP/1.1\r\nHost: localhost\r\n",
        "GET /health/../v1/models HTTP/1.1\r\nHost: localhost\r\n",
        "GET /health%2F..%2Fv1/models HTTP/1.1\r\nHost: localhost\r\n",
        "GET /v1/models?/health HTTP/1.1\r\nHost: localhost\r\n",
        "GET http://localhost/v1/models HTTP/1.1\r\nHost: localhost/health\r\n",
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer sk-nope\r\n",
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: bearer\r\n",
        "POST /v1/precise HTTP/1.1\r\nHost: localhost/health\r\nContent-Length: 0\r\n",
    ],
)
def test_path_and_host_tricks_cannot_skip_the_key(guarded: ServerProcess, head: str) -> None:
    status, reply = raw_request(guarded.port, head + "Connection: close\r\n")
    assert status in (400, 401), reply[:200]
    if status == 401:
        assert b'"invalid_api_key"' in reply


def test_the_right_key_and_the_probes_work_over_a_socket(guarded: ServerProcess) -> None:
    status, reply = raw_request(
        guarded.port,
        f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        "Connection: close\r\n",
    )
    assert status == 200 and MODEL.encode() in reply
    for path in ("/health", "/ready", "/metrics"):
        status, _ = raw_request(
            guarded.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        )
        assert status == 200, path


def test_load_smoke_at_twice_capacity(process_dir: Path) -> None:
    capacity = 4
    server = scripted_process(
        process_dir,
        "load",
        ["--max-inflight-samples", str(capacity)],
        {"QUORUM_TEST_TOKEN_DELAY_MS": "5"},
    )
    try:
        body = chat_body(MODEL, 16, words(12))
        report = asyncio.run(
            run_load(server.base_url, body, concurrency=2 * capacity, requests=160, backoff_s=0.02)
        )
        print("\n" + report.summary())
        assert report.total == 160
        assert not report.unexpected, report.summary()
        assert report.statuses[200] > 0 and report.statuses[429] > 0, report.summary()
        # Refusals wait for nothing: cheaper than the admitted requests, whatever the load.
        refusal, success = (
            statistics.median(report.error_latencies),
            statistics.median(report.ok_latencies),
        )
        assert refusal < success, report.summary()
        assert asyncio.run(serves_normally(server.base_url, body))
        assert server.stop() == 0
    finally:
        server.stop(timeout=10)
