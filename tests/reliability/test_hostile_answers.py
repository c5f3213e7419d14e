"""Hostile answers cannot take the server down: judging is bounded in time and memory.

A precise request's samples are model output, which a prompt steers; here the scripted engine
echoes the prompt, so the client chooses exactly what the judge sees. Each answer below used to
hang a worker thread for minutes, grow the server by gigabytes, or give HTTP 500. Now each gets
HTTP 200 within a bound derived from the judge's limits, with the sample's ``judge`` field
saying why it is kept as text; the server's memory stays flat (the workers are capped) and
``/health`` answers quickly throughout.

Also: a client that disconnects mid-judging gets its worker killed before its admission share
is released, and a real ``quorum serve`` stuck judging exits promptly after SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from decoding.engine import ChatPrompt, Prompt, SamplingSpec
from server.engines.scripted import ScriptedEngine
from server.runtime.judge_pool import KILL_WAIT_S
from server.runtime.reaper import descendants
from server.runtime.settings import Settings
from tests.e2e.server_process import ServerProcess
from tests.inprocess import serving
from tests.reliability.conftest import AsgiCall, make_settings, scripted_process, until

JUDGE = {"judge_timeout_s": 1.0, "judge_memory_mb": 256, "judge_budget_s": 4.0}
# A request's judging ends by its budget, plus the wait for killed workers, plus slack for a
# loaded machine: a hard bound, not a performance claim.
BOUND_S = JUDGE["judge_budget_s"] + KILL_WAIT_S + 5.0
HEALTH_LATENCY_S = 1.0  # generous: the loop never runs a judgement, it only waits for one
RSS_GROWTH_MB = 64  # the server's own growth over an attack; workers may use judge_memory_mb
SLOW = {"timeout", "too_large"}  # which limit a slow answer meets first depends on the machine

HOSTILE: list[tuple[str, str, set[str]]] = [
    ("huge-power", "2^{\\lfloor e^{30} \\rfloor}", SLOW),
    ("power-of-power", "2^{2^{32}}", SLOW),
    ("tower", "9^{9^{9^{9^{9}}}}", SLOW),
    ("binomial", "\\binom{10^{12}}{10^{6}}", SLOW),
    ("gamma", "\\Gamma(10^{10})", SLOW),
    ("nested-exp", "\\exp(\\exp(\\exp(\\exp(100))))", SLOW),
    ("floor-of-exp", "\\lfloor e^{10^{10}} \\rfloor", SLOW),
    ("deep-parentheses", "(" * 70 + "1" + ")" * 70, SLOW),
    ("flat-tower", "9^9^9^9^9", {"too_large"}),  # > 4,300 digits: once an HTTP 500
    ("factorial-product", "999!\\cdot 999!\\cdot 999!\\cdot 999!", {"too_large"}),
    ("squared-power", "{10^{4096}}^{2}", {"too_large"}),
    ("huge-factorial", "(10^{5000})!", {"too_large"}),
]


def echo_user(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    """Every sample is the user's message, verbatim."""
    assert isinstance(prompt, ChatPrompt)
    return str(prompt.messages[-1]["content"])


def resident_mb(pid: int | None = None) -> float:
    """Resident memory of a process (default: this one, which serves in-process)."""
    statm = Path(f"/proc/{pid or 'self'}/statm").read_text().split()
    return int(statm[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def state(pid: int) -> str | None:
    """A process's state letter (R running, S sleeping, ...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_workers(root: int) -> list[int]:
    """Processes below ``root`` at work on a judgement: running, with more CPU time than a
    worker's start (warm, a few hundredths of a second) could explain."""
    return [pid for pid, _ in descendants(root) if state(pid) == "R" and cpu_s(pid) > 0.5]


def workers_mb(root: int) -> float:
    """The largest resident memory among the judge's workers (read off the event loop: /proc
    reads can wait on a dying process)."""
    sizes = [resident_mb(pid) for pid, _ in descendants(root) if state(pid) not in (None, "Z")]
    return max(sizes, default=0.0)


def precise(answer: str, samples: int = 3) -> dict[str, Any]:
    """A precise request whose samples all answer ``answer``."""
    content = f"So the answer is \\boxed{{{answer}}}"
    return {"messages": [{"role": "user", "content": content}], "samples": samples}


def hostile_settings(tmp: Path, **overrides: Any) -> Settings:
    """Scripted-server settings with short judge limits."""
    return make_settings(tmp, **{**JUDGE, **overrides})


@pytest.mark.parametrize(
    ("answer", "verdicts"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
async def test_a_hostile_answer_is_judged_in_bounds(
    tmp_cache: Path, answer: str, verdicts: set[str]
) -> None:
    settings = hostile_settings(tmp_cache)
    engine = ScriptedEngine(script=echo_user, max_model_len=512)
    async with serving(settings, engine) as (app, http, _client):
        assert (await http.post("/v1/precise", json=precise("1"))).status_code == 200  # warm
        judge_server = app.state.judge.server_pid
        before = resident_mb()
        started = time.monotonic()
        attack = asyncio.create_task(http.post("/v1/precise", json=precise(answer)))
        probes: list[float] = []
        worker_peak_mb = 0.0
        while not attack.done():
            sent = time.monotonic()
            assert (await http.get("/health")).status_code == 200
            probes.append(time.monotonic() - sent)
            worker_peak_mb = max(worker_peak_mb, await asyncio.to_thread(workers_mb, judge_server))
            await asyncio.sleep(0.02)  # probe pacing, not synchronisation
        response = await attack
        took = time.monotonic() - started
        grew = resident_mb() - before

        assert response.status_code == 200, response.text
        body = response.json()
        assert {s["judge"] for s in body["samples"]} <= verdicts
        assert len({s["judge"] for s in body["samples"]}) == 1, "one distinct answer, one verdict"
        sample = body["samples"][0]
        assert (body["votes"][0]["answer"], body["votes"][0]["count"]) == (sample["answer"], 3)
        assert took < BOUND_S, f"judging took {took:.1f} s"
        assert probes and max(probes) < HEALTH_LATENCY_S, f"/health took {max(probes):.2f} s"
        assert grew < RSS_GROWTH_MB, f"the server grew {grew:.0f} MB"
        print(
            f"\n{answer[:40]!r}: {sample['judge']} in {took:.2f} s, server +{grew:.0f} MB, "
            f"worker peak {worker_peak_mb:.0f} MB, /health max {max(probes) * 1000:.0f} ms"
        )
        metrics = (await http.get("/metrics")).text
        reason = sample["judge"]
        assert f'quorum_judge_fallbacks_total{{reason="{reason}"}} 3.0' in metrics
        normal = await http.post("/v1/precise", json=precise("\\frac{2}{4}"))
        assert normal.json()["answer"] == "0.5", "the server judges normally afterwards"


async def test_many_distinct_hostile_answers_share_one_budget(tmp_cache: Path) -> None:
    answers = [f"9^{{9^{{9^{{{k}}}}}}}" for k in range(10, 26)]  # 16 distinct slow formulas

    def distinct(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
        return f"\\boxed{{{answers[index % len(answers)]}}}"

    settings = hostile_settings(tmp_cache, max_samples=16)
    engine = ScriptedEngine(script=distinct, max_model_len=512)
    async with serving(settings, engine) as (_app, http, _client):
        started = time.monotonic()
        response = await http.post("/v1/precise", json=precise("ignored", samples=16))
        took = time.monotonic() - started
    assert response.status_code == 200
    verdicts = [s["judge"] for s in response.json()["samples"]]
    assert set(verdicts) <= SLOW
    # 16 answers x 1 s each over 2 workers would be 8 s: the 4 s budget cuts them.
    print(f"\n16 distinct slow formulas: {took:.2f} s")
    assert took < BOUND_S, f"judging took {took:.1f} s"


async def test_a_client_that_leaves_mid_judging_has_its_worker_killed(tmp_cache: Path) -> None:
    settings = hostile_settings(tmp_cache, judge_timeout_s=60.0, judge_budget_s=60.0)
    engine = ScriptedEngine(script=echo_user, max_model_len=512)
    async with serving(settings, engine) as (app, _http, _client):
        root = app.state.judge.server_pid
        call = AsgiCall(app, "/v1/precise", precise("\\Gamma(10^{10})", samples=4))
        await until(lambda: bool(busy_workers(root)), within=30.0)
        [worker] = busy_workers(root)
        assert app.state.admission.in_use == 4
        call.hang_up()
        await until(lambda: app.state.admission.in_use == 0, within=10.0)
        assert state(worker) in (None, "Z"), "the worker died before admission let go"
        await asyncio.wait_for(call.task, 5.0)
        assert app.state.lifecycle.inflight == 0


async def test_a_request_timeout_mid_judging_kills_the_worker(tmp_cache: Path) -> None:
    settings = hostile_settings(
        tmp_cache, judge_timeout_s=60.0, judge_budget_s=60.0, request_timeout_s=10.0
    )
    engine = ScriptedEngine(script=echo_user, max_model_len=512)
    async with serving(settings, engine) as (app, http, _client):
        root = app.state.judge.server_pid
        attack = asyncio.create_task(
            http.post("/v1/precise", json=precise("\\Gamma(10^{10})", samples=2))
        )
        await until(lambda: bool(busy_workers(root)), within=30.0)
        [worker] = busy_workers(root)
        response = await attack
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        assert state(worker) in (None, "Z"), "the timeout killed the judging"
        assert app.state.admission.in_use == 0


def test_a_server_stuck_judging_exits_promptly_after_sigterm(
    process_dir: Path, stop_after: list[ServerProcess]
) -> None:
    drain_s = 2.0
    env = {"QUORUM_JUDGE_TIMEOUT_S": "300", "QUORUM_JUDGE_BUDGET_S": "300"}
    server = scripted_process(process_dir, "stuck", ["--drain-timeout-s", str(drain_s)], env)
    stop_after.append(server)
    replies: list[int] = []

    def attack() -> None:
        with httpx.Client(timeout=60) as client:
            body = {**precise("\\Gamma(10^{10})"), "max_tokens": 64}
            replies.append(client.post(f"{server.base_url}/v1/precise", json=body).status_code)

    client = threading.Thread(target=attack)
    client.start()
    deadline = time.monotonic() + 30
    while not (busy := busy_workers(server.process.pid)):
        assert time.monotonic() < deadline, "judging never started"
        time.sleep(0.05)  # polling for the attack to reach a worker
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=drain_s + 10) == 0
    took = time.monotonic() - sent
    server.stop()  # closes its log
    client.join(10)
    assert took < drain_s + 5.0, f"exit took {took:.1f} s after SIGTERM"
    assert replies == [503], "the request was cut at the drain's end"
    assert all(state(pid) in (None, "Z") for pid in busy)
    assert server.wait_group_gone(5.0), "a judge process outlived the server"
