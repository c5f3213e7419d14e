"""The embedded SmolLM2-135M-Instruct, as a user gets it: short arithmetic at temperature 0."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from modelprep.embedded import DEFAULT_MODEL_NAME
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.engine
QUESTION = [{"role": "user", "content": "What is 2+3?"}]


def test_greedy_answer_is_correct(smol: openai.OpenAI) -> None:
    result = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=24
    )
    assert "5" in (result.choices[0].message.content or "")


def test_streamed_greedy_answer_equals_the_whole_one(smol: openai.OpenAI) -> None:
    whole = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=24
    )
    stream = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=24, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == whole.choices[0].message.content


def test_creative_mode_writes_real_text(smol_server: ServerProcess) -> None:
    response = httpx.post(
        f"{smol_server.base_url}/v1/creative",
        json={
            "messages": [{"role": "user", "content": "Write one line about the sea."}],
            "max_tokens": 24,
            "seed": 1,
        },
        timeout=120,
    )
    assert response.status_code == 200
    text = response.json()["choices"][0]["message"]["content"]
    assert len(text.split()) >= 3


SHORT = [{"role": "user", "content": "What is 2+3? Reply with just the number."}]


def precise(server: ServerProcess, **body: object) -> dict[str, object]:
    """POST /v1/precise on the real server."""
    response = httpx.post(f"{server.base_url}/v1/precise", json=body, timeout=300)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_precise_vote_is_right_with_its_votes(smol_server: ServerProcess) -> None:
    result = precise(smol_server, messages=SHORT, samples=5, seed=1, temperature=0.2, max_tokens=32)
    assert result["answer"] == "5"
    assert result["abstained"] is False
    votes = result["votes"]
    assert isinstance(votes, list) and votes[0]["answer"] == "5" and votes[0]["count"] >= 2
    samples = result["samples"]
    assert isinstance(samples, list) and len(samples) == 5
    assert [s["seed"] for s in samples] == [1, 2, 3, 4, 5]


def test_one_sample_equals_a_greedy_chat_completion(
    smol_server: ServerProcess, smol: openai.OpenAI
) -> None:
    greedy = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=32
    )
    result = precise(smol_server, messages=QUESTION, samples=1, max_tokens=32)
    samples = result["samples"]
    assert isinstance(samples, list)
    assert samples[0]["text"] == greedy.choices[0].message.content
    assert samples[0]["tokens"] == (greedy.usage and greedy.usage.completion_tokens)


def test_same_seed_gives_the_same_response(smol_server: ServerProcess) -> None:
    body = {"messages": SHORT, "samples": 4, "seed": 9, "max_tokens": 32}
    first, second = precise(smol_server, **body), precise(smol_server, **body)
    for volatile in ("id", "created"):
        first.pop(volatile)
        second.pop(volatile)
    # Texts, answers, votes and seeds must match exactly; logprobs only to float noise, since
    # a prompt served from the prefix cache is computed by a different kernel path.
    for result in (first, second):
        for sample in result["samples"]:  # type: ignore[attr-defined]
            sample["mean_logprob"] = round(sample["mean_logprob"], 3)
    assert first == second, json.dumps([first, second], indent=1)


def test_adaptive_answers_and_accounts_for_every_sample(smol_server: ServerProcess) -> None:
    """Adaptive starts every sample at once; the receipt says which finished and which were cut
    (an early stop that cuts running samples is shown in test_adaptive_engine.py)."""
    result = precise(
        smol_server,
        messages=SHORT,
        samples=8,
        adaptive=True,
        seed=1,
        temperature=0.2,
        max_tokens=32,
    )
    assert result["answer"] == "5"
    samples = result["samples"]
    assert [s["index"] for s in samples] == list(range(8))
    receipt = result["receipt"]
    assert sorted(receipt["finished"] + receipt["cut"]) == list(range(8))
    assert result["samples_used"] == len(receipt["finished"])
    assert all(samples[i]["stopped"] == "consensus" for i in receipt["cut"])


def test_precise_alias_through_the_openai_client(smol: openai.OpenAI) -> None:
    result = smol.chat.completions.create(
        model=f"{DEFAULT_MODEL_NAME}:precise",
        messages=SHORT,
        temperature=0.2,
        seed=1,
        max_tokens=32,
        extra_body={"samples": 3},
    )
    evidence = (result.model_extra or {})["quorum"]
    assert evidence["answer"] == "5"
    assert result.choices[0].message.content == evidence["text"]
