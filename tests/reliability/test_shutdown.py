"""Shutdown always ends, in a real ``quorum serve`` process on the paced scripted engine:

- whatever is stuck (a request ignoring cancellation, a thread that never returns, a blocked
  event loop), the process exits soon after the drain timeout, says why in its log, and
  leaves no child process behind;
- a client that sent its headers and part of its body when SIGTERM came gets an OpenAI error
  (503 ``engine_unavailable`` at the drain's end), never a bare 500.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from server.runtime.serve import EXIT_DEADLINE_AFTER_DRAIN_S, FORCED_EXIT_CODE, HARD_STOP_S
from tests.inprocess import MODEL
from tests.reliability.conftest import CHAT, MESSAGES, scripted_process
from tests.reliability.raw_http import connect, head, json_request, read_reply
from tests.reliability.test_processes import metric, poll

DRAIN_S = 1.0
SLACK_S = 5.0  # a loaded machine's scheduling delay, on top of the deadline


@pytest.mark.parametrize("hang", ["cancel", "thread", "loop"])
def test_the_process_exits_after_the_deadline_whatever_is_stuck(
    process_dir: Path, hang: str
) -> None:
    server = scripted_process(
        process_dir,
        f"hang-{hang}",
        ["--drain-timeout-s", str(DRAIN_S)],
        {"QUORUM_TEST_HANG": hang},
    )
    try:
        with connect(server.port, timeout=60) as sock:
            sock.sendall(json_request(CHAT, {"model": MODEL, "messages": MESSAGES}))
            poll(lambda: "test engine: hanging" in server.log_tail(), timeout=10)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(
                timeout=DRAIN_S + EXIT_DEADLINE_AFTER_DRAIN_S + 2 * HARD_STOP_S + SLACK_S
            )
            took = time.monotonic() - signalled
        assert code == FORCED_EXIT_CODE, server.log_tail()
        assert took >= DRAIN_S, "the drain was skipped"
        log = server.log_path.read_text()
        assert '"message": "shutdown deadline passed: exiting now"' in log
        # The hanging test engine starts a worker process that its stop leaves running.
        assert server.wait_group_gone(timeout=SLACK_S), "an engine worker outlived the server"
    finally:
        server.stop(timeout=10)


def test_a_half_sent_upload_at_shutdown_gets_an_openai_error(process_dir: Path) -> None:
    server = scripted_process(
        process_dir, "upload", ["--drain-timeout-s", str(DRAIN_S), "--body-timeout-s", "60"]
    )
    try:
        with connect(server.port, timeout=30) as sock:
            headers = "Content-Type: application/json\r\nContent-Length: 1000\r\n"
            sock.sendall(head("POST", CHAT, headers) + b'{"model": "')
            poll(lambda: metric(server.base_url, "quorum_inflight_requests") == 1)
            server.process.send_signal(signal.SIGTERM)
            reply = read_reply(sock)
        assert reply is not None, "the connection closed without a reply"
        assert reply.status == 503, reply
        assert reply.error()["code"] == "engine_unavailable"
        assert reply.headers["content-type"] == "application/json"
        assert server.process.wait(timeout=DRAIN_S + SLACK_S) == 0
    finally:
        server.stop(timeout=10)
