"""Adaptive precise mode over HTTP: a stream commits as soon as the vote is settled, the samples
still running are aborted in the engine, and the answer says which samples were cut."""

from __future__ import annotations

import json
from typing import Any

from decoding.engine import Prompt, SamplingSpec
from server.engines.scripted import ScriptedEngine
from server.runtime.settings import Settings
from tests.inprocess import serving

SEED = 3
LONG = 300  # words of the samples that ramble; the first four seeds answer at once


def quick_then_long(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    if spec.seed is not None and spec.seed - SEED < 4:
        return "The answer is 5"
    return " ".join(["thinking"] * LONG) + " so 6"


async def test_a_stream_commits_once_the_vote_is_settled(settings: Settings) -> None:
    engine = ScriptedEngine(script=quick_then_long)
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "What is 2+3?"}],
        "samples": 8,
        "adaptive": True,
        "seed": SEED,
        "max_tokens": 500,
        "stream": True,
    }
    async with serving(settings, engine) as running:
        async with running.http.stream("POST", "/v1/precise", json=body) as response:
            assert response.status_code == 200, await response.aread()
            lines = [line[6:] async for line in response.aiter_lines() if line.startswith("data:")]
        assert engine.active == 0, "every sample's engine request is closed"
    assert lines[-1] == "[DONE]"
    events = [json.loads(line) for line in lines[:-1]]
    answer = events[-1]
    assert answer["object"] == "precise.answer"
    assert (answer["answer"], answer["stop_reason"], answer["samples_used"]) == (
        "5",
        "consensus",
        4,
    )
    voted = [e["sample"] for e in events if e.get("stage") == "voting"]
    assert sorted(voted) == [0, 1, 2, 3], "progress for each voter, before the answer"
    cut = [s for s in answer["samples"] if s["stopped"] == "consensus"]
    assert [s["index"] for s in cut] == [4, 5, 6, 7]
    assert all(s["finish_reason"] == "abort" and s["tokens"] < LONG for s in cut)
    receipt = answer["receipt"]
    assert (receipt["finished"], receipt["cut"]) == ([0, 1, 2, 3], [4, 5, 6, 7])
    assert receipt["seeds"] == [SEED + i for i in range(8)]
    assert answer["usage"]["completion_tokens"] == sum(s["tokens"] for s in answer["samples"])
    assert [(call[1].n, call[1].seed) for call in engine.calls] == [(1, SEED + i) for i in range(8)]
