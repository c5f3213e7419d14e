"""Verified voting over HTTP on a scripted engine: checks before votes, the evidence, the 400s,
and hostile candidates contained while the server keeps serving."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from decoding.engine import Prompt, SamplingSpec
from server.engines.scripted import ScriptedEngine
from server.runtime.sandbox import isolation
from server.runtime.settings import Settings
from tests.inprocess import MODEL, serving

needs_namespaces = pytest.mark.skipif(
    isolation() != "namespaces", reason="this platform gives no namespaces to the sandbox"
)

QUESTION = [{"role": "user", "content": "Write add(a, b)."}]
TESTS = [{"name": "small", "args": [1, 2], "expected": 3}, "assert add(-1, 1) == 0"]
CODE = {
    "wrong": "def add(a, b):\n    return a - b",
    "right": "def add(a, b):\n    return a + b",
    "also_right": "def add(a, b):\n    return sum((a, b))",
    "loop": "def add(a, b):\n    while True:\n        pass",
    "fork_bomb": "import os\ndef add(a, b):\n    while True:\n        os.fork()",
    "memory_hog": "def add(a, b):\n    hog = bytearray(2**34)\n    return a + b",
    "write_outside": "def add(a, b):\n    open('/work/quorum-escape', 'w').write('x')\n"
    "    return a + b",
    "read_env": "import os\ndef add(a, b):\n    seen = repr(os.environ)\n"
    "    for pid in os.listdir('/proc'):\n        try:\n"
    "            seen += open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1')\n"
    "        except OSError:\n            pass\n"
    "    return 0 if 'sk-not-for-candidates' in seen else a + b",
    "socket": "import socket\ndef add(a, b):\n    socket.create_connection(('1.1.1.1', 80), 1)\n"
    "    return a + b",
    "kill_parent": "import os\ndef add(a, b):\n    os.kill(os.getppid(), 9)\n    return a + b",
}


def _fenced(name: str) -> str:
    return f"Here you go:\n```python\n{CODE[name]}\n```\n"


def scripted(names: list[str]) -> ScriptedEngine:
    """An engine whose sample i writes the code ``names[i]``."""

    def script(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
        return _fenced(names[index % len(names)])

    return ScriptedEngine(script=script, max_model_len=4096)


def body(samples: int, **extra: Any) -> dict[str, Any]:
    verify = {"tests": TESTS, "entry_point": "add", "timeout_s": 2.0}
    verify.update(extra.pop("verify", {}))
    return {
        "messages": QUESTION,
        "samples": samples,
        "seed": 1,
        "answer_format": "code",
        "max_tokens": 200,
        "verify": verify,
        **extra,
    }


async def test_passing_candidates_outvote_a_wrong_majority(settings: Settings) -> None:
    engine = scripted(["wrong", "wrong", "wrong", "right", "also_right"])
    async with serving(settings, engine) as running:
        response = await running.http.post("/v1/precise", json=body(5))
        assert response.status_code == 200, response.text
        result = response.json()
        metrics = (await running.http.get("/metrics")).text
    assert result["answer"] == CODE["right"] or result["answer"] == CODE["also_right"]
    assert (result["verified_samples"], result["winner_verified"]) == (2, True)
    assert [(v["count"], v["samples"]) for v in result["votes"]] == [(2, [3, 4])]
    flags = [(s["verified"], s["voted"]) for s in result["samples"]]
    assert flags == [(False, False)] * 3 + [(True, True)] * 2
    assert result["samples"][0]["verify_reason"] == "small: expected 3, got -1"
    assert result["receipt"]["plan"]["verify"]["tests"] == [{**TESTS[0], "kwargs": {}}, TESTS[1]]
    assert 'quorum_precise_verified_total{outcome="failed"} 3.0' in metrics
    assert 'quorum_precise_verified_total{outcome="passed"} 2.0' in metrics


async def test_no_passing_candidate_abstains_with_min_agreement(settings: Settings) -> None:
    async with serving(settings, scripted(["wrong", "loop"])) as running:
        response = await running.http.post("/v1/precise", json=body(2, min_agreement=0.5))
    result = response.json()
    assert (result["abstained"], result["answer"], result["verified_samples"]) == (True, None, 0)
    assert result["abstain_reason"] == "none of the 2 candidates passed verification"
    assert result["samples"][1]["verify_reason"].startswith("wall-clock timeout in small")


async def test_chat_surface_carries_the_verification(settings: Settings) -> None:
    async with serving(settings, scripted(["right", "wrong"])) as running:
        completion = await running.client.chat.completions.create(
            model=f"{MODEL}:precise",
            messages=QUESTION,
            extra_body=body(2),  # type: ignore[arg-type]
        )
    quorum = completion.model_extra["quorum"] if completion.model_extra else {}
    assert quorum["winner_verified"] is True
    assert completion.choices[0].message.content == _fenced("right")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"answer_format": "number"}, "answer_format"),
        ({"verify": {"timeout_s": 1000}}, "verify.timeout_s"),
        ({"verify": {"tests": ["assert add(1, 2) =="]}}, "verify.tests.0"),
        ({"verify": {"tests": ["x = 1"], "test_file": "def test_x(:\n"}}, "verify.test_file"),
        ({"verify": {"entry_point": "1bad"}}, "verify"),
        ({"verify": {"entry_point": None}}, "verify"),
        ({"verify": {"equation": "x = 2"}}, "verify"),
        ({"verify": {"surprise": 1}}, "verify"),
        ({"vote_weighting": "logprob"}, "vote_weighting"),
        ({"verify": {"tests": [], "probes": [[1]]}}, "verify"),
    ],
)
async def test_bad_verify_specs_are_400_before_any_work(
    settings: Settings, change: dict[str, Any], param: str
) -> None:
    engine = scripted(["right"])
    async with serving(settings, engine) as running:
        response = await running.http.post("/v1/precise", json=body(2, **change))
        streamed = await running.http.post("/v1/precise", json=body(2, stream=True, **change))
    for answer in (response, streamed):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert str(error["param"]).startswith(param), error
    assert engine.calls == []


async def test_maths_answer_needs_a_formula_format(settings: Settings) -> None:
    engine = scripted(["right"])
    async with serving(settings, engine) as running:
        response = await running.http.post(
            "/v1/precise",
            json={**body(2), "verify": {"equation": "x^2 = 4"}},
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "answer_format"


def _sandbox_running() -> bool:
    """Whether a candidate is running now (sandbox users have uids past 1,000,000)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid >= 1_000_000:
                return True
        except OSError:
            continue
    return False


async def _sandboxes_end() -> bool:
    """Whether every sandbox process ends: a killed worker's sandbox dies with it, but the
    kernel ends a dead namespace's processes asynchronously, so this polls (bounded)."""
    for _ in range(2000):
        if not await asyncio.to_thread(_sandbox_running):
            return True
        await asyncio.sleep(0.005)  # polling a condition, not timing
    return False


@needs_namespaces
async def test_hostile_candidates_are_contained_while_the_server_serves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUORUM_TEST_KEY", "sk-not-for-candidates")
    hostile = [n for n in CODE if n not in ("wrong", "right", "also_right")]
    engine = scripted([*hostile, "right"])
    async with serving(settings, engine) as running:
        request = asyncio.ensure_future(
            running.http.post("/v1/precise", json=body(len(hostile) + 1))
        )
        while not await asyncio.to_thread(_sandbox_running):
            assert not request.done(), (await request).text
            await asyncio.sleep(0.005)  # polling a condition, not timing
        health = await running.http.get("/health")
        chat = await running.client.chat.completions.create(model=MODEL, messages=QUESTION)
        assert not request.done(), "both answered while its candidates were being run"
        response = await request
    assert health.status_code == 200 and chat.choices[0].message.content
    result = response.json()
    reasons = {hostile[i]: s["verify_reason"] for i, s in enumerate(result["samples"][:-1])}
    verified = {hostile[i]: s["verified"] for i, s in enumerate(result["samples"][:-1])}
    # Stopped and reported:
    assert reasons["loop"].startswith("wall-clock timeout in small"), reasons
    assert "BlockingIOError" in reasons["fork_bomb"], reasons
    assert "MemoryError" in reasons["memory_hog"], reasons
    assert "Read-only file system" in reasons["write_outside"], reasons
    assert "Network is unreachable" in reasons["socket"], reasons
    assert not any(verified[n] for n in ("loop", "fork_bomb", "memory_hog", "write_outside"))
    assert verified["socket"] is False
    # Contained: what they tried did nothing, so they pass and vote with the right answer.
    assert verified["read_env"] is True and verified["kill_parent"] is True, reasons
    assert result["winner_verified"] is True and result["votes"][0]["count"] == 3
    assert result["answer"] in (CODE["right"], CODE["read_env"], CODE["kill_parent"])
    assert not await asyncio.to_thread(Path("/work/quorum-escape").exists)
    assert await _sandboxes_end()


async def test_checks_past_the_budget_are_stopped_and_do_not_vote(settings: Settings) -> None:
    # The loop's own limit (10 s) lies past the request's budget (4 s), so only the budget can
    # stop it; the right candidate needs a fraction of the budget even on a loaded machine.
    tight = settings.model_copy(update={"verify_budget_s": 4.0})
    async with serving(tight, scripted(["loop", "right"])) as running:
        request = body(2, verify={"timeout_s": 10.0})
        result = (await running.http.post("/v1/precise", json=request)).json()
    loop = result["samples"][0]
    assert (loop["verified"], loop["voted"]) == (None, False)
    assert loop["verify_reason"] == "not checked within the request's verification budget"
    assert result["winner_verified"] is True and result["answer"] == CODE["right"]
    assert await _sandboxes_end()


async def test_streamed_answer_carries_the_verification(settings: Settings) -> None:
    async with serving(settings, scripted(["wrong", "right"])) as running:
        response = await running.http.post("/v1/precise", json=body(2, stream=True))
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: {")]
    answer = json.loads(events[-1])
    assert answer["object"] == "precise.answer"
    assert [s["verified"] for s in answer["samples"]] == [False, True]
    assert answer["winner_verified"] is True


@needs_namespaces
async def test_a_client_that_leaves_stops_its_candidates(settings: Settings) -> None:
    async with serving(settings, scripted(["loop"])) as running:
        request = asyncio.ensure_future(
            running.http.post("/v1/precise", json=body(1, verify={"timeout_s": 10}))
        )
        while not await asyncio.to_thread(_sandbox_running):
            assert not request.done()
            await asyncio.sleep(0.005)  # polling a condition, not timing
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        assert await _sandboxes_end()
        assert (await running.http.get("/health")).status_code == 200


EQUATION = {"equation": "x^2 - 5x + 6 = 0"}
SUBSTITUTE = {"substitute": {"x": 3}, "expected": "7"}


@pytest.mark.parametrize(
    ("verify", "answers", "verified", "count"),
    [
        (EQUATION, ["4", "4", "3", "\\frac{6}{2}"], [False, False, True, True], 2),
        (SUBSTITUTE, ["2x+2", "2x+2", "2x+1"], [False, False, True], 1),
    ],
)
async def test_maths_candidates_are_checked_by_equation_or_substitution(
    settings: Settings, verify: dict[str, Any], answers: list[str], verified: list[bool], count: int
) -> None:
    def script(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
        return f"The answer is ${answers[index]}$."

    engine = ScriptedEngine(script=script, max_model_len=512)
    request = {"messages": QUESTION, "samples": len(answers), "seed": 1, "verify": verify}
    async with serving(settings, engine) as running:
        result = (await running.http.post("/v1/precise", json=request)).json()
    assert [s["verified"] for s in result["samples"]] == verified, result["samples"]
    assert (result["winner_verified"], result["verified_samples"]) == (True, count)
    assert [(v["count"], v["samples"]) for v in result["votes"]] == [
        (count, [i for i, ok in enumerate(verified) if ok])
    ]
    assert result["samples"][0]["verify_reason"]
