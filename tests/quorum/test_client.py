"""``quorum.client`` through the official openai client against the in-process app: typed
evidence from ``:precise`` completions (whole, streamed, legacy), checked options, and receipts
that replay to the same vote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from decoding.engine import Prompt, SamplingSpec
from quorum.client import (
    Evidence,
    NoEvidence,
    SampleOut,
    VoteOut,
    aprecise_chat,
    evidence,
    precise_fields,
    precise_model,
    replay_request,
)
from server.engines.scripted import ScriptedEngine
from tests.inprocess import MODEL, InProcess, make_settings, serving

QUESTION = "What is 2+3?"
MESSAGES: Any = [{"role": "user", "content": QUESTION}]
ANSWERS = ["So 2+3 = 5. The answer is 5.", "The answer is 6", "#### 5", "I think \\boxed{5}"]


def arithmetic(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    """Three of every four samples say 5, in different styles; one says 6."""
    return ANSWERS[index % 4]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[InProcess]:
    """The app on the arithmetic script."""
    engine = ScriptedEngine(script=arithmetic, max_model_len=512)
    async with serving(make_settings(tmp_path), engine) as running:
        yield running


async def precise_json(running: InProcess, **body: Any) -> dict[str, Any]:
    """POST /v1/precise (not streamed) and return the JSON answer."""
    response = await running.http.post("/v1/precise", json={"messages": MESSAGES, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_precise_chat_carries_typed_evidence(running: InProcess) -> None:
    reply = await aprecise_chat(running.client, MODEL, MESSAGES, samples=4, seed=10)
    assert reply.model == f"{MODEL}:precise"
    vote = evidence(reply)
    assert isinstance(vote, Evidence)
    assert (vote.answer, vote.agreement, vote.abstained) == ("5", 0.75, False)
    assert reply.choices[0].message.content == vote.text
    assert vote.votes == [
        VoteOut(answer="5", count=3, samples=[0, 2, 3]),
        VoteOut(answer="6", count=1, samples=[1]),
    ]
    assert all(isinstance(s, SampleOut) for s in vote.samples)
    assert [s.seed for s in vote.samples] == [10, 11, 12, 13]
    assert vote.receipt.sampling["seed"] == 10 and vote.receipt.plan["samples"] == 4
    # The same request on /v1/precise gives the same evidence, read the same way.
    assert evidence(await precise_json(running, samples=4, seed=10)) == vote


async def test_a_streamed_precise_chat_ends_with_the_evidence(running: InProcess) -> None:
    stream = await running.client.chat.completions.create(
        model=precise_model(MODEL),
        messages=MESSAGES,
        stream=True,
        extra_body=precise_fields(samples=4, seed=3),
    )
    chunks = [chunk async for chunk in stream]
    carrying = [c for c in chunks if (c.model_extra or {}).get("quorum") is not None]
    *progress, last = carrying
    assert progress, "progress rides on choice-less chunks before the vote"
    for chunk in progress:
        with pytest.raises(NoEvidence):
            evidence(chunk)
    vote = evidence(last)
    assert vote.answer == "5" and vote.samples_used == 4
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == vote.text


async def test_a_precise_text_completion_carries_evidence(running: InProcess) -> None:
    reply = await running.client.completions.create(
        model=precise_model(MODEL), prompt=QUESTION, extra_body=precise_fields(samples=2, seed=0)
    )
    vote = evidence(reply)
    assert reply.choices[0].text == vote.text
    assert vote.samples_used == 2 and vote.receipt.seeds == [0, 1]


async def test_a_plain_completion_has_no_evidence(running: InProcess) -> None:
    reply = await running.client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(NoEvidence):
        evidence(reply)
    with pytest.raises(NoEvidence):
        evidence({"object": "precise.progress", "stage": "sampling", "samples": 4})


@pytest.mark.parametrize(
    "options",
    [
        {"samples": 4, "seed": 7},
        {"samples": 1},
        {"samples": 8, "temperature": 1.2, "top_p": 0.9, "max_tokens": 5, "stop": ["="]},
        {"samples": 8, "adaptive": True, "stopping_rule": "esc", "min_agreement": 0.9},
        {"samples": 6, "adaptive": True, "answer_format": "number", "max_total_tokens": 12},
        {"samples": 3, "presence_penalty": 0.5, "frequency_penalty": -0.5, "deadline_ms": 60000},
        {"samples": 3, "top_logprobs": 2, "confidence_window": 4, "token_confidences": True},
    ],
)
async def test_a_receipt_replays_to_the_same_vote(
    running: InProcess, options: dict[str, Any]
) -> None:
    first = await precise_json(running, **options)
    fields = replay_request(first["receipt"])
    for name, value in options.items():
        if name != "temperature" or first["samples_used"] > 1:
            assert fields[name] == value, name
    again = await precise_json(running, **fields)
    assert again["receipt"] == first["receipt"]
    assert (again["answer"], again["votes"], again["samples"]) == (
        first["answer"],
        first["votes"],
        first["samples"],
    )
    # The typed receipt replays the same way, and the fields ride on a chat as options.
    assert replay_request(evidence(first).receipt) == fields
    reply = await aprecise_chat(running.client, MODEL, MESSAGES, **fields)
    assert evidence(reply).votes == evidence(again).votes


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"sample": 3}, ValueError),
        ({"samples": 0}, ValueError),
        ({"answer_format": "roman"}, ValueError),
        ({"min_agreement": 1.5}, ValueError),
        ({"stopping_rule": "never"}, ValueError),
        ({"stream": True}, TypeError),
        ({"messages": MESSAGES}, TypeError),
    ],
)
def test_bad_options_fail_before_any_request(options: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        precise_fields(**options)


def test_good_options_pass_unchanged() -> None:
    options = {"samples": 5, "seed": 1, "temperature": 0.2, "answer_format": "number"}
    assert precise_fields(**options) == options
    assert precise_model(MODEL) == precise_model(f"{MODEL}:precise") == f"{MODEL}:precise"
