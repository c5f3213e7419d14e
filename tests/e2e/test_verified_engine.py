"""Verified voting end to end on the real engine: a small coding prompt with tests.

The tiny random model writes no code, so every sample is unverified with its reason and the
request abstains; the embedded model writes ``add`` well enough to return a verified answer.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.engine
PROMPT = [
    {
        "role": "user",
        "content": "Write a Python function add(a, b) that returns the sum of a and b. "
        "Reply with only the code in a ```python block.",
    }
]
VERIFY = {
    "tests": [{"name": "small", "args": [1, 2], "expected": 3}, "assert add(-4, 4) == 0"],
    "entry_point": "add",
    "probes": [[10, 5]],
    "timeout_s": 5,
}


def verified_precise(server: ServerProcess, **extra: Any) -> dict[str, Any]:
    body = {"messages": PROMPT, "answer_format": "code", "verify": VERIFY, "seed": 7, **extra}
    response = httpx.post(f"{server.base_url}/v1/precise", json=body, timeout=300)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_tiny_model_samples_are_unverified_and_the_vote_abstains(
    tiny_server: ServerProcess,
) -> None:
    result = verified_precise(tiny_server, samples=3, max_tokens=48, min_agreement=0.5)
    assert result["abstained"] is True and result["answer"] is None
    assert (result["verified_samples"], result["winner_verified"]) == (0, None)
    for sample in result["samples"]:
        assert sample["verified"] is not True
        assert sample["verify_reason"], sample
    metrics = httpx.get(f"{tiny_server.base_url}/metrics", timeout=30).text
    assert "quorum_precise_verified_total{" in metrics


def test_embedded_model_returns_a_verified_answer(smol_server: ServerProcess) -> None:
    result = verified_precise(smol_server, samples=4, temperature=0.3, max_tokens=96)
    assert result["winner_verified"] is True, [s["verify_reason"] for s in result["samples"]]
    assert result["verified_samples"] >= 1
    assert "def add" in result["answer"]
    for sample in result["samples"]:
        assert sample["verify_reason"], sample
        assert sample["voted"] is (sample["verified"] is True)
