"""Items 6 and 7 in-process: a drain refuses new work at once and lets in-flight work finish
(or aborts it at the drain timeout); an engine death fails in-flight requests with 500, turns
/health unhealthy and asks for a non-zero exit. (The same with real processes and signals:
``test_processes.py`` and ``test_real_engine.py``.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from server.runtime.reaper import descendants, reap
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, AsgiCall, make_settings, paced, until, words

LONG = [{"role": "user", "content": words(60)}]  # ~60 tokens at 20 ms: 1.2 s of work


async def test_drain_refuses_new_work_and_lets_in_flight_work_finish(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    async with serving(make_settings(tmp_cache), engine) as (app, http, _client):
        lifecycle = app.state.lifecycle
        streaming = AsgiCall(app, CHAT, {"model": MODEL, "messages": LONG, "stream": True})
        whole = asyncio.create_task(http.post(CHAT, json={"model": MODEL, "messages": LONG}))
        await until(lambda: engine.active == 2)

        lifecycle.request_shutdown()
        ready = await http.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        refused = await http.post(CHAT, json={"model": MODEL, "messages": MESSAGES})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "engine_unavailable"
        assert refused.headers["connection"] == "close"
        assert (await http.get("/health")).status_code == 200, "draining is not dying"

        assert await lifecycle.drain(10.0), "in-flight work should finish within the drain"
        finished = await whole
        assert finished.status_code == 200
        assert finished.json()["choices"][0]["finish_reason"] == "stop"
        await asyncio.wait_for(streaming.task, 1)
        assert streaming.status == 200
        assert b'"finish_reason":"stop"' in streaming.body
        assert streaming.body.endswith(b"data: [DONE]\n\n")
        assert lifecycle.exit_code == 0
        metrics = (await http.get("/metrics")).text
        assert 'quorum_rejections_total{reason="draining"} 1.0' in metrics
        assert "quorum_ready 0.0" in metrics


async def test_drain_timeout_aborts_what_is_left(tmp_cache: Path) -> None:
    engine = paced(token_delay_s=0.02)
    async with serving(make_settings(tmp_cache), engine) as (app, http, _client):
        lifecycle = app.state.lifecycle
        streaming = AsgiCall(app, CHAT, {"model": MODEL, "messages": LONG, "stream": True})
        whole = asyncio.create_task(http.post(CHAT, json={"model": MODEL, "messages": LONG}))
        await until(lambda: engine.active == 2)
        lifecycle.request_shutdown()
        assert not await lifecycle.drain(0.2)
        assert engine.active == 0 and lifecycle.inflight == 0
        cut = await whole
        assert cut.status_code == 503
        assert cut.json()["error"]["code"] == "engine_unavailable"
        await asyncio.wait_for(streaming.task, 1)
        events = [e for e in streaming.body.decode().split("\n\n") if e]
        assert events[-1] == "data: [DONE]"
        assert json.loads(events[-2].removeprefix("data: "))["error"]["type"] == "server_error"


async def test_engine_death_fails_in_flight_work_and_asks_for_a_nonzero_exit(
    tmp_cache: Path,
) -> None:
    engine = paced(token_delay_s=0.02)
    async with serving(make_settings(tmp_cache), engine) as (app, http, _client):
        lifecycle = app.state.lifecycle
        assert (await http.get("/health")).json() == {"status": "ok"}
        streaming = AsgiCall(app, CHAT, {"model": MODEL, "messages": LONG, "stream": True})
        whole = asyncio.create_task(http.post(CHAT, json={"model": MODEL, "messages": LONG}))
        await until(lambda: engine.active == 2 and b"w1" in streaming.body)

        engine.die()
        failed = await whole
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "server_error" and error["code"] == "engine_error"
        await asyncio.wait_for(streaming.task, 1)
        assert streaming.body.endswith(b"data: [DONE]\n\n")
        assert b'"code":"engine_error"' in streaming.body

        health = await http.get("/health")
        assert health.status_code == 503 and health.json() == {"status": "engine_dead"}
        await until(lambda: lifecycle.shutdown_requested, within=2.0)
        assert lifecycle.exit_code == 1
        assert (await http.get("/ready")).status_code == 503
        refused = await http.post(CHAT, json={"model": MODEL, "messages": MESSAGES})
        assert refused.status_code == 503


def test_orphaned_engine_workers_are_reaped() -> None:
    # A parent (the "engine core") with a child (a "worker"); killing the parent hard orphans
    # the child, as SIGKILL on vLLM's engine core does; the server's exit path reaps it.
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "time.sleep(60)"
    )
    core = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        # Only the core's own subtree: the session may run other servers below pytest.
        while not (found := descendants(core.pid)):
            assert time.monotonic() < deadline, "the process tree did not appear"
            time.sleep(0.01)  # polling for the tree to exist, with a deadline
        worker = found[0]
        core.kill()
        core.wait()
        assert Path(f"/proc/{worker[0]}").exists(), "the worker outlives its parent"
        assert reap(found, grace_s=2.0) == 1
        assert not _running(worker[0])
    finally:
        core.kill()


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
