"""Precise mode over HTTP on a scripted engine: the vote, its evidence, caps and aliases."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from bench.rig.openai_schema import validate
from decoding.engine import Prompt, SamplingSpec
from server.engines.scripted import ScriptedEngine
from server.runtime.settings import Settings
from tests.inprocess import MODEL, serving

QUESTION = [{"role": "user", "content": "What is 2+3?"}]
ANSWERS = ["So 2+3 = 5. The answer is 5.", "The answer is 6", "#### 5", "I think \\boxed{5}"]


def arithmetic(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    """Three of every four samples say 5, in different styles; one says 6."""
    return ANSWERS[index % 4]


@pytest.fixture
def engine() -> ScriptedEngine:
    """The arithmetic script instead of the echo one."""
    return ScriptedEngine(script=arithmetic, max_model_len=512)


async def precise(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """POST /v1/precise and return the JSON body, asserting success."""
    response = await http.post("/v1/precise", json={"messages": QUESTION, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_vote_returns_answer_with_evidence(
    http: httpx.AsyncClient, engine: ScriptedEngine
) -> None:
    result = await precise(http, samples=4, seed=10)
    assert result["object"] == "precise.answer"
    assert (result["answer"], result["agreement"], result["abstained"]) == ("5", 0.75, False)
    assert result["votes"] == [
        {"answer": "5", "count": 3, "samples": [0, 2, 3]},
        {"answer": "6", "count": 1, "samples": [1]},
    ]
    assert result["text"] in {ANSWERS[0], ANSWERS[2], ANSWERS[3]}
    assert [s["seed"] for s in result["samples"]] == [10, 11, 12, 13]
    assert result["samples_used"] == 4
    assert result["receipt"]["sampling"]["seed"] == 10
    assert result["receipt"]["sampling"]["temperature"] == 0.7
    assert len(engine.calls) == 1, "N samples are one engine request"
    assert engine.calls[0][1].n == 4
    usage = result["usage"]
    assert usage["completion_tokens"] == sum(s["tokens"] for s in result["samples"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_one_sample_is_greedy(http: httpx.AsyncClient, engine: ScriptedEngine) -> None:
    result = await precise(http)
    spec = engine.calls[0][1]
    assert (spec.n, spec.temperature) == (1, 0.0)
    assert result["answer"] == "5" and result["samples_used"] == 1


async def test_seed_is_drawn_and_reported_when_absent(http: httpx.AsyncClient) -> None:
    result = await precise(http, samples=2)
    seed = result["receipt"]["sampling"]["seed"]
    assert isinstance(seed, int)
    assert result["receipt"]["seeds"] == [seed, seed + 1]


async def test_min_agreement_abstains_and_says_why(http: httpx.AsyncClient) -> None:
    result = await precise(http, samples=4, seed=1, min_agreement=0.8)
    assert result["abstained"] is True
    assert result["answer"] is None
    assert result["abstain_reason"]
    assert result["votes"][0]["answer"] == "5", "the leader is still reported"


async def test_adaptive_stops_before_the_cap(engine: ScriptedEngine, settings: Settings) -> None:
    unanimous = ScriptedEngine(script=lambda p, s, i: "The answer is 5", max_model_len=512)
    async with serving(settings, unanimous) as running:
        result = await precise(running.http, samples=8, adaptive=True, seed=3)
    assert result["stopped_early"] is True
    assert result["samples_used"] < 8
    assert result["stop_reason"] == "consensus"
    # Every sample is its own request, seeded as child i of an n=8 request seeded 3 would be.
    assert [(call[1].n, call[1].seed) for call in unanimous.calls] == [(1, 3 + i) for i in range(8)]
    assert result["receipt"]["seeds"] == [3 + i for i in range(8)]
    cut = [s for s in result["samples"] if s["stopped"] == "consensus"]
    assert all(s["finish_reason"] == "abort" and not s["voted"] for s in cut)
    assert len(cut) == 8 - result["samples_used"]


async def test_prompt_instead_of_messages(http: httpx.AsyncClient, engine: ScriptedEngine) -> None:
    response = await http.post("/v1/precise", json={"prompt": "2+3=", "samples": 2})
    assert response.status_code == 200
    assert engine.calls[0][0].__class__.__name__ == "TextPrompt"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": QUESTION, "samples": 65}, "samples"),
        ({"messages": QUESTION, "samples": 0}, "samples"),
        ({"messages": QUESTION, "min_agreement": 1.5}, "min_agreement"),
        ({"messages": QUESTION, "answer_format": "poem"}, "answer_format"),
        ({"messages": QUESTION, "max_tokens": 100_000}, "max_tokens"),
        ({"messages": QUESTION, "surprise": 1}, "surprise"),
        ({"messages": QUESTION, "prompt": "both"}, "body"),
        ({}, "body"),
    ],
)
async def test_bad_precise_bodies_are_400(
    http: httpx.AsyncClient, engine: ScriptedEngine, body: dict[str, Any], param: str
) -> None:
    response = await http.post("/v1/precise", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param or (param == "body" and error["param"] in (None, "body"))
    assert engine.calls == []


async def test_stream_reports_progress_then_the_answer(http: httpx.AsyncClient) -> None:
    async with http.stream(
        "POST", "/v1/precise", json={"messages": QUESTION, "samples": 4, "stream": True}
    ) as response:
        lines = [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["object"] for e in events] == ["precise.progress"] * 5 + ["precise.answer"]
    assert events[0]["stage"] == "sampling"
    assert sorted(e["sample"] for e in events[1:-1]) == [0, 1, 2, 3]  # one per settled sample
    assert [e["samples_drawn"] for e in events[1:-1]] == [1, 2, 3, 4]
    assert events[-2]["tallies"] == {"5": 3, "6": 1}
    assert events[-1]["answer"] == "5"


async def test_chat_alias_carries_evidence_in_an_extra_field(
    client: openai.AsyncOpenAI, engine: ScriptedEngine
) -> None:
    result = await client.chat.completions.create(
        model=f"{MODEL}:precise", messages=QUESTION, extra_body={"samples": 4}, seed=2
    )
    validate(result.model_dump(mode="json", exclude_unset=True), "CreateChatCompletionResponse")
    evidence = (result.model_extra or {})["quorum"]
    assert evidence["answer"] == "5"
    assert result.choices[0].message.content == evidence["text"]
    assert engine.calls[0][1].n == 4


async def test_chat_alias_stream_skips_cleanly_in_the_client(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=f"{MODEL}:precise", messages=QUESTION, extra_body={"samples": 4}, stream=True
    )
    text, finishes, evidence = "", [], None
    async for chunk in stream:
        validate(
            chunk.model_dump(mode="json", exclude_unset=True), "CreateChatCompletionStreamResponse"
        )
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
                evidence = (chunk.model_extra or {})["quorum"]
    assert finishes == ["stop"]
    assert evidence is not None and evidence["text"] == text and evidence["answer"] == "5"


async def test_completions_alias(client: openai.AsyncOpenAI) -> None:
    result = await client.completions.create(
        model=f"{MODEL}:precise", prompt="2+3=", extra_body={"samples": 4}
    )
    assert (result.model_extra or {})["quorum"]["answer"] == "5"


async def test_alias_rejects_n_and_bad_extras(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=f"{MODEL}:precise", messages=QUESTION, n=2)
    assert caught.value.param == "n"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=f"{MODEL}:precise", messages=QUESTION, extra_body={"samples": 0}
        )
    assert caught.value.param == "samples"


async def test_samples_report_their_confidence(
    http: httpx.AsyncClient, engine: ScriptedEngine
) -> None:
    result = await precise(http, samples=2, seed=1, top_logprobs=3, token_confidences=True)
    assert engine.calls[0][1].logprobs == 3, "the engine is asked for the top-k alternatives"
    for sample in result["samples"]:
        assert sample["confidence"]["mean"] > 0
        assert len(sample["token_confidences"]) == sample["tokens"]
    assert result["receipt"]["plan"]["confidence"]["top_k"] == 3
    plain = await precise(http, samples=2, seed=1)
    assert (
        "token_confidences" not in plain["samples"][0]
        or plain["samples"][0]["token_confidences"] is None
    )


async def test_vote_options_reach_the_plan_and_the_receipt(
    http: httpx.AsyncClient, engine: ScriptedEngine
) -> None:
    result = await precise(
        http,
        samples=4,
        seed=1,
        vote_weighting="logprob",
        keep_top=0.5,
        truncated_votes="any",
        answer_instruction=True,
    )
    plan = result["receipt"]["plan"]
    assert (plan["weighting"], plan["keep_top"], plan["truncated_votes"]) == ("logprob", 0.5, "any")
    assert sum(s["voted"] for s in result["samples"]) == 2, "keep_top 0.5 of 4 samples"
    prompt = engine.calls[0][0]
    assert prompt.messages[-1]["content"].endswith("End with: The answer is <answer>.")
    assert result["truncated"] is False
