"""Adaptive precise mode on the real vLLM engine (the embedded SmolLM2): the vote stops inside
the batch, the samples still running are aborted in the engine, and a stream commits at once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.engine
# An item of the evaluation set on which most of the 16 seeded samples answer briefly and alike,
# while a few ramble on: the vote is settled long before the last sample would end.
BODY: dict[str, Any] = {
    "messages": [
        {
            "role": "user",
            "content": "State the final answer to the following arithmetic problem: 1 - 1 - 0 =",
        }
    ],
    "samples": 16,
    "adaptive": True,
    "temperature": 0.7,
    "max_tokens": 256,
    "seed": 1000,
}


def engine_requests_active(server: ServerProcess) -> float:
    for line in httpx.get(f"{server.base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("quorum_engine_requests_active "):
            return float(line.split()[1])
    raise AssertionError("quorum_engine_requests_active is not exported")


def check_cut(result: dict[str, Any]) -> None:
    """The vote stopped early, and the samples it cut were aborted mid-generation."""
    assert result["stopped_early"] is True and result["stop_reason"] in ("consensus", "decided")
    samples = result["samples"]
    cut = [s for s in samples if s["stopped"] == "consensus"]
    assert cut, "an early stop with nothing running left to abort"
    assert all(s["finish_reason"] == "abort" and not s["voted"] for s in cut)
    assert all(s["tokens"] < BODY["max_tokens"] for s in cut), "the cut ones stopped generating"
    assert result["samples_used"] == 16 - len(cut)
    assert result["receipt"]["seeds"] == [1000 + i for i in range(16)]
    assert result["receipt"]["cut"] == [s["index"] for s in cut]
    assert result["usage"]["completion_tokens"] == sum(s["tokens"] for s in samples)


def test_an_early_stop_aborts_the_running_samples(smol_server: ServerProcess) -> None:
    response = httpx.post(f"{smol_server.base_url}/v1/precise", json=BODY, timeout=600)
    assert response.status_code == 200, response.text
    check_cut(response.json())
    assert engine_requests_active(smol_server) == 0, "an aborted sample is still in the engine"


def test_a_stream_commits_once_the_vote_is_settled(smol_server: ServerProcess) -> None:
    events = []
    with httpx.stream(
        "POST", f"{smol_server.base_url}/v1/precise", json={**BODY, "stream": True}, timeout=600
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
    answer = events[-1]
    assert answer["object"] == "precise.answer"
    check_cut(answer)
    progress = [e for e in events if e.get("stage") == "voting"]
    assert {e["sample"] for e in progress} >= {
        s["index"] for s in answer["samples"] if s["voted"]
    }, "every voter was reported before the answer"
    assert engine_requests_active(smol_server) == 0
