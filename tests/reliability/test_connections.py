"""Hostile connections cannot hold a real ``quorum serve`` process (the paced scripted engine,
over real sockets):

- sockets that never send a byte are closed within the header timeout, all 600 of them, while
  a normal client is served; a client that drips its headers is cut with a 408;
- headers past the size cap get 431, even when they never end;
- a body that stalls between chunks gets an OpenAI-shaped 408 and a closed connection;
- an idle keep-alive connection is closed after the keep-alive timeout;
- connections past the cap are closed at accept while those inside it are served;
- a request refused before its body was read keeps its connection in step, and cannot hold it
  by dripping that body.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import ServerProcess
from tests.inprocess import MODEL
from tests.reliability.conftest import CHAT, MESSAGES, scripted_process, words
from tests.reliability.raw_http import (
    closed,
    connect,
    head,
    json_request,
    read_reply,
    wait_all_closed,
)
from tests.reliability.test_processes import metric, poll

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1
MAX_HEADER_BYTES = 4096
SLACK_S = 3.0  # a loaded machine's scheduling delay, on top of each timeout
IDLE_SOCKETS = 600


@pytest.fixture(scope="module")
def strict(process_dir: Path) -> Iterator[ServerProcess]:
    """A scripted server with short connection timeouts and a small header cap."""
    server = scripted_process(
        process_dir,
        "strict",
        [
            *("--header-timeout-s", str(HEADER_TIMEOUT_S)),
            *("--body-timeout-s", str(BODY_TIMEOUT_S)),
            *("--keep-alive-timeout-s", str(KEEP_ALIVE_S)),
            *("--max-header-bytes", str(MAX_HEADER_BYTES)),
        ],
    )
    yield server
    assert server.stop() == 0


def served_normally(server: ServerProcess) -> bool:
    """A well-behaved client gets its answer."""
    body = {"model": MODEL, "messages": MESSAGES}
    return httpx.post(f"{server.base_url}{CHAT}", json=body, timeout=10).status_code == 200


def test_silent_sockets_are_closed_within_the_header_timeout(strict: ServerProcess) -> None:
    idle = [connect(strict.port) for _ in range(IDLE_SOCKETS)]
    try:
        opened = time.monotonic()
        assert served_normally(strict), "600 silent sockets must not starve a real client"
        left, said = wait_all_closed(idle, within=HEADER_TIMEOUT_S + SLACK_S)
        took = time.monotonic() - opened
    finally:
        for sock in idle:
            sock.close()
    assert left == 0, f"{left} of {IDLE_SOCKETS} silent sockets still open after {took:.1f} s"
    assert said == b"", "a socket that sent nothing of a request gets no reply, only a close"
    assert served_normally(strict)
    assert metric(strict.base_url, 'quorum_rejections_total{reason="header_timeout"}') >= 600


def test_a_client_dripping_its_headers_is_cut_with_a_408(strict: ServerProcess) -> None:
    drip = head("POST", CHAT, "X-Drip: " + "a" * 200 + "\r\n")  # 0.2 s a byte: 50 s in all
    with connect(strict.port) as sock:
        sock.settimeout(0.2)  # the drip's pace: one byte per wait for a reply
        started = time.monotonic()
        sent = 0
        while sent < len(drip):
            sock.send(drip[sent : sent + 1])
            sent += 1
            try:
                sock.recv(1, socket.MSG_PEEK)  # a reply or a close arrived: the drip was cut
                break
            except TimeoutError:
                continue
        sock.settimeout(5)
        reply = read_reply(sock)
        cut_after = time.monotonic() - started
    assert sent < len(drip), "the drip was never cut"
    assert reply is not None and reply.status == 408
    assert reply.error()["code"] == "request_timeout"
    assert reply.headers["connection"] == "close"
    assert cut_after < HEADER_TIMEOUT_S + SLACK_S
    assert served_normally(strict)


@pytest.mark.parametrize("streamed", [False, True], ids=["one-write", "never-ending"])
def test_headers_past_the_cap_get_431(strict: ServerProcess, streamed: bool) -> None:
    with connect(strict.port) as sock:
        if streamed:  # a header that never ends: cut off once the cap is passed
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Long: ")
            with pytest.raises(OSError):  # the server closes: a later write fails
                for _ in range(100_000):  # 100 MB, past any socket buffer
                    sock.sendall(b"a" * 1024)
        else:
            sock.sendall(head("GET", "/v1/models", f"X-Long: {'a' * 2 * MAX_HEADER_BYTES}\r\n"))
        reply = read_reply(sock)
    assert reply is not None and reply.status == 431
    assert reply.error()["code"] == "headers_too_large"
    assert served_normally(strict)


def test_headers_within_the_cap_are_served(strict: ServerProcess) -> None:
    with connect(strict.port) as sock:
        sock.sendall(head("GET", "/v1/models", f"X-Long: {'a' * (MAX_HEADER_BYTES // 2)}\r\n"))
        reply = read_reply(sock)
    assert reply is not None and reply.status == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_a_stalled_body_gets_an_openai_408_and_a_closed_connection(
    strict: ServerProcess, chunked: bool
) -> None:
    if chunked:
        start = head(
            "POST", CHAT, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        )
        start += b"a\r\n" + b'{"model": ' + b"\r\n"
    else:
        start = head("POST", CHAT, "Content-Type: application/json\r\nContent-Length: 100\r\n")
        start += b'{"model": '
    with connect(strict.port) as sock:
        sock.sendall(start)
        began = time.monotonic()
        reply = read_reply(sock)
        answered_after = time.monotonic() - began
        assert closed(sock, within=SLACK_S), "the connection stays open after the 408"
    assert reply is not None and reply.status == 408, reply
    assert reply.error() == {
        "message": f"The request body stalled for more than {BODY_TIMEOUT_S:g} s.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_timeout",
    }
    assert reply.headers["connection"] == "close"
    assert answered_after < BODY_TIMEOUT_S + SLACK_S
    assert served_normally(strict)


def test_an_idle_keep_alive_connection_is_closed(strict: ServerProcess) -> None:
    with connect(strict.port) as sock:
        for _ in range(2):  # the connection is kept alive between requests
            sock.sendall(json_request(CHAT, {"model": MODEL, "messages": MESSAGES}))
            reply = read_reply(sock)
            assert reply is not None and reply.status == 200
            assert reply.headers.get("connection") != "close"
        assert closed(sock, within=KEEP_ALIVE_S + SLACK_S), "idle keep-alive never closed"


def test_connections_past_the_cap_are_closed_at_accept(process_dir: Path) -> None:
    cap = 4
    server = scripted_process(
        process_dir, "capped", ["--max-connections", str(cap), "--header-timeout-s", "60"]
    )
    try:
        inside = [connect(server.port) for _ in range(cap)]
        try:
            with connect(server.port) as extra:
                assert closed(extra, within=SLACK_S), "a connection past the cap was held"
            inside[0].sendall(json_request(CHAT, {"model": MODEL, "messages": MESSAGES}))
            reply = read_reply(inside[0])
            assert reply is not None and reply.status == 200, "a connection inside the cap works"
        finally:
            for sock in inside:
                sock.close()
        # The slots free up as the server sees the closes.
        poll(lambda: served_once(server), timeout=SLACK_S)
        assert metric(server.base_url, 'quorum_rejections_total{reason="connection_limit"}') >= 1
        assert server.stop() == 0
    finally:
        server.stop(timeout=10)


def served_once(server: ServerProcess) -> bool:
    """One request on a fresh connection got its answer."""
    try:
        with connect(server.port, timeout=2) as sock:
            sock.sendall(head("GET", "/v1/models", "Connection: close\r\n"))
            reply = read_reply(sock)
    except OSError:
        return False
    return reply is not None and reply.status == 200


@pytest.fixture
def full(process_dir: Path) -> Iterator[ServerProcess]:
    """A server whose single sample of capacity a long streamed request holds."""
    server = scripted_process(
        process_dir,
        "full",
        [
            *("--max-inflight-samples", "1"),
            *("--header-timeout-s", str(HEADER_TIMEOUT_S)),
        ],
        {"QUORUM_TEST_TOKEN_DELAY_MS": "50"},
    )
    prompt = [{"role": "user", "content": words(200)}]
    long = {"model": MODEL, "messages": prompt, "max_tokens": 300, "stream": True}
    try:
        with connect(server.port, timeout=60) as holder:
            holder.sendall(json_request(CHAT, long))  # 200 tokens at 50 ms: 10 s of work
            poll(lambda: metric(server.base_url, "quorum_admitted_samples") == 1)
            yield server
    finally:
        server.stop(timeout=30)


def test_a_refusal_keeps_the_connection_and_skips_the_unread_body(full: ServerProcess) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 200_000}]}
    with connect(full.port) as sock:
        for _ in range(3):
            sock.sendall(json_request(CHAT, big))
            reply = read_reply(sock)
            assert reply is not None and reply.status == 429
            assert reply.headers.get("connection") != "close"
        sock.sendall(head("GET", "/v1/models"))
        reply = read_reply(sock)
    assert reply is not None and reply.status == 200, "the connection fell out of step"


def test_a_refused_request_cannot_hold_its_connection_by_dripping_its_body(
    full: ServerProcess,
) -> None:
    with connect(full.port) as sock:
        sock.sendall(
            head("POST", CHAT, "Content-Type: application/json\r\nContent-Length: 9999\r\n")
        )
        reply = read_reply(sock)  # refused before a byte of the body
        assert reply is not None and reply.status == 429
        sock.settimeout(0.2)  # the drip's pace
        started = time.monotonic()
        cut = False
        while not cut and time.monotonic() - started < HEADER_TIMEOUT_S + SLACK_S:
            try:
                sock.send(b"x")
                cut = not sock.recv(1)
            except TimeoutError:
                continue
            except OSError:
                cut = True
    assert cut, "a dripped unread body held the connection"


def test_a_full_servers_refusal_is_an_openai_429_counted_and_logged(full: ServerProcess) -> None:
    body = {"model": MODEL, "messages": MESSAGES}
    refusals = 5
    with connect(full.port) as sock:
        for index in range(refusals):
            sock.sendall(json_request(CHAT, body, f"X-Request-Id: storm-{index}\r\n"))
            reply = read_reply(sock)
            assert reply is not None and reply.status == 429
            assert reply.error()["type"] == "rate_limit_error"
            assert reply.error()["code"] == "overloaded"
            assert reply.headers["retry-after"] == "1"
            assert reply.headers["x-request-id"] == f"storm-{index}"
            assert "date" in reply.headers  # written by uvicorn's task (first) or straight (rest)
    assert metric(full.base_url, 'quorum_rejections_total{reason="overloaded"}') == refusals
    # The access log sums a burst of refusals in one line, a second after its first.
    poll(lambda: '"refused at capacity"' in full.log_path.read_text())
    summaries = [
        json.loads(line)
        for line in full.log_path.read_text().splitlines()
        if '"refused at capacity"' in line
    ]
    assert sum(line["count"] for line in summaries) == refusals


def test_a_full_server_still_asks_for_the_key_first(process_dir: Path) -> None:
    server = scripted_process(
        process_dir,
        "full-keyed",
        ["--max-inflight-samples", "1"],
        {"QUORUM_TEST_TOKEN_DELAY_MS": "50", "QUORUM_API_KEYS": "sk-connections"},
    )
    key = "Authorization: Bearer sk-connections\r\n"
    prompt = [{"role": "user", "content": words(200)}]
    long = {"model": MODEL, "messages": prompt, "max_tokens": 300, "stream": True}
    body = {"model": MODEL, "messages": MESSAGES}
    try:
        with connect(server.port, timeout=60) as holder, connect(server.port) as sock:
            holder.sendall(json_request(CHAT, long, key))
            poll(lambda: metric(server.base_url, "quorum_admitted_samples") == 1)
            for extra, status in (("", 401), ("Authorization: Bearer wrong\r\n", 401), (key, 429)):
                sock.sendall(json_request(CHAT, body, extra))
                reply = read_reply(sock)
                assert reply is not None and reply.status == status, extra
    finally:
        server.stop(timeout=30)
