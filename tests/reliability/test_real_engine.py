"""The real vLLM engine in real processes (tiny random Llama): what the scripted engine cannot
show. Two starts in all (~20-30 s each on a 2-core CPU).

- Prompt + max_tokens past the window is a 400 naming max_tokens with both numbers.
- A canary prompt never reaches the logs at the default level.
- SIGTERM with a stream in flight: readiness 503 at once, new requests 503, the stream
  finishes, exit 0, no engine process left.
- The engine core process killed mid-request: in-flight requests get 500, ``/health``
  is no longer 200, the process exits non-zero, no engine process left. (The SSE error event
  of a stream cut by an engine death: ``test_lifecycle.py``, on the scripted engine.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelprep.embedded import default_cache_dir
from modelprep.tiny import build_tiny_model
from tests.e2e.server_process import ServerProcess
from tests.reliability.test_processes import metric, poll, sse_events

pytestmark = pytest.mark.engine
TINY = "tiny-llama"
CANARY = "canary-88e1-osprey-granite"


def tiny_server(run_dir: Path, name: str, *extra: str) -> ServerProcess:
    """``quorum serve`` on the tiny random Llama (built once into the cache)."""
    model = build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")
    args = ["--model", str(model), "--served-name", TINY, "--max-model-len", "512", *extra]
    return ServerProcess(args, run_dir / f"{name}.log", env={"TMPDIR": str(run_dir)})


def long_story(max_tokens: int, **extra: Any) -> dict[str, Any]:
    """A chat request of 16 samples at temperature 1.0, up to ``max_tokens`` each: long
    enough to be in flight when the test acts."""
    return {
        "model": TINY,
        "messages": [{"role": "user", "content": "tell a long story"}],
        "max_tokens": max_tokens,
        "n": 16,
        "temperature": 1.0,
        **extra,
    }


def engine_core_pids(server: ServerProcess) -> list[int]:
    """The server's vLLM engine-core processes."""
    found = []
    for pid in server.live_group_members():
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"EngineCore" in name:
            found.append(pid)
    return found


@pytest.fixture(scope="module")
def tiny(process_dir: Path) -> Iterator[ServerProcess]:
    """One tiny-model server for this module; its last test ends it with SIGTERM."""
    server = tiny_server(process_dir, "tiny-drain", "--drain-timeout-s", "60")
    yield server
    server.stop()


def test_context_overflow_names_max_tokens_with_both_numbers(tiny: ServerProcess) -> None:
    prompt = " ".join(["lighthouse"] * 300)
    response = httpx.post(
        f"{tiny.base_url}/v1/completions",
        json={"model": TINY, "prompt": prompt, "max_tokens": 400},
        timeout=60,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "max_tokens" and error["code"] == "context_length_exceeded"
    assert "512" in error["message"] and "400" in error["message"]
    ok = httpx.post(
        f"{tiny.base_url}/v1/completions",
        json={"model": TINY, "prompt": "hello", "max_tokens": 4},
        timeout=60,
    )
    assert ok.status_code == 200


def test_sigterm_with_a_stream_in_flight(tiny: ServerProcess) -> None:
    base = tiny.base_url
    canary = httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": TINY, "messages": [{"role": "user", "content": CANARY}], "max_tokens": 4},
        timeout=60,
    )
    assert canary.status_code == 200
    body = long_story(max_tokens=400, stream=True)
    with (
        httpx.Client(base_url=base, timeout=120) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as stream,
    ):
        events = sse_events(stream)
        next(event for event in events if '"content"' in event)
        assert engine_core_pids(tiny), "vLLM runs its engine core in a child process"
        tiny.process.send_signal(signal.SIGTERM)
        assert poll(lambda: httpx.get(f"{base}/ready").status_code == 503, timeout=1.0) < 1.0
        refused = httpx.post(f"{base}/v1/chat/completions", json={**body, "stream": False})
        assert refused.status_code == 503
        rest = list(events)
    assert rest[-1] == "[DONE]"
    finishes = [
        c["finish_reason"]
        for e in rest[:-1]
        for c in json.loads(e)["choices"]
        if c.get("finish_reason")
    ]
    assert len(finishes) == 16 and set(finishes) <= {"stop", "length"}, rest[-3:]
    assert tiny.process.wait(timeout=60) == 0, tiny.log_tail()
    assert not tiny.live_group_members(), "engine processes outlived the server"
    log = tiny.log_path.read_text()
    assert CANARY not in log, "a prompt reached the logs at the default level"


def test_engine_death_fails_in_flight_requests_and_exits_nonzero(process_dir: Path) -> None:
    # The engine runs 16 sequences at once: with two 16-sample requests admitted, one waits in
    # the engine's queue for a whole generation, so it is surely in flight at the kill. Long
    # generations (a 2048-token window) keep that state for many seconds, so a slow /metrics
    # read on a busy machine cannot miss it; the kill comes as soon as it is seen.
    server = tiny_server(
        process_dir, "tiny-kill", "--max-num-seqs", "16", "--max-model-len", "2048"
    )
    body = long_story(max_tokens=1800)
    answers: list[httpx.Response | Exception] = []
    posters: list[threading.Thread] = []
    try:
        base = server.base_url
        # One client made up front: building one per thread costs seconds on a busy machine.
        with (
            httpx.Client(base_url=base, timeout=120) as client,
            httpx.Client() as reader,  # metric() sets its own timeout
        ):

            def post() -> None:
                try:
                    answers.append(client.post("/v1/chat/completions", json=body))
                except httpx.HTTPError as error:
                    answers.append(error)

            posters = [threading.Thread(target=post) for _ in range(3)]
            for poster in posters:
                poster.start()
            poll(
                lambda: (
                    metric(base, "quorum_admitted_samples", reader) >= 32
                    or not any(p.is_alive() for p in posters)
                ),
                timeout=120,
            )
            assert any(p.is_alive() for p in posters), (
                f"every request ended before two were in flight: {answers}\n{server.log_tail()}"
            )
            cores = engine_core_pids(server)
            assert cores, "vLLM runs its engine core in a child process"
            for pid in cores:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            for poster in posters:
                poster.join(timeout=60)
        failed = [a for a in answers if isinstance(a, Exception) or a.status_code != 200]
        assert failed, "the request waiting in the engine must have failed"
        for answer in failed:
            assert isinstance(answer, httpx.Response), answer
            assert answer.status_code in (500, 503), answer.text
            assert answer.json()["error"]["type"] == "server_error"
        assert any(
            isinstance(a, httpx.Response) and a.json()["error"]["code"] == "engine_error"
            for a in failed
        )
        # Not 200: 503 while it shuts down, or already gone (also unhealthy to an orchestrator).
        with contextlib.suppress(httpx.TransportError):
            assert httpx.get(f"{base}/health", timeout=2).status_code == 503
        code = server.process.wait(timeout=60)
        assert code != 0, "an engine death must end in a non-zero exit, so it gets restarted"
        assert time.monotonic() - killed < 30
        assert not server.live_group_members(), "engine processes outlived the server"
        assert "the engine died" in server.log_path.read_text()
    finally:
        server.stop(timeout=30)
        for poster in posters:  # no request left running into the next test
            poster.join(timeout=60)
