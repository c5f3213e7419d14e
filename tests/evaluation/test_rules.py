"""Vote rules, prefix votes and adaptive replay, checked against decoding's own pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from decoding import (
    AnswerNormalizer,
    BetaStopping,
    ConsistencyPlan,
    EngineInfo,
    GenerationChunk,
    Prompt,
    SampleDelta,
    SamplingSpec,
    StoppingRule,
    TextPrompt,
    TokenLogprob,
    WindowStopping,
    self_consistency,
)
from evaluation.judge import ItemRun, JudgedSample, judge_record
from evaluation.rules import RULES, Context, majority_of, simulate_adaptive

BASE_SEED = 1000


def text_of(answer: str | None) -> str:
    return "I am not sure." if answer is None else f"Let me see. The answer is {answer}."


def run_of(
    answers: Sequence[str | None],
    *,
    gold: str = "5",
    logprobs: Sequence[float] | None = None,
    finish: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    confidence: Sequence[Any] | None = None,
) -> ItemRun:
    """Judge a fake /v1/precise response whose sample i said answers[i]."""
    samples = []
    for i, answer in enumerate(answers):
        sample: dict[str, Any] = {
            "index": i,
            "text": texts[i] if texts else text_of(answer),
            "finish_reason": finish[i] if finish else "stop",
            "seed": BASE_SEED + i,
            "mean_logprob": logprobs[i] if logprobs else -0.5,
            "tokens": 8,
        }
        if confidence is not None:
            sample["confidence"] = confidence[i]
        samples.append(sample)
    record = {
        "item": {"id": "q", "set": "s", "split": "dev", "answer": gold, "kind": "number"},
        "config": {"name": "c", "samples": len(answers)},
        "request": {"answer_format": "auto"},
        "response": {"answer": None, "samples": samples, "usage": {}, "receipt": {}},
    }
    return judge_record(record)


def decide(rule: str, run: ItemRun, greedy: JudgedSample | None = None) -> tuple[str | None, bool]:
    decision = RULES[rule](run.samples, Context(greedy=greedy))
    assert decision is not None
    return decision.key, decision.correct


@dataclass
class ListEngine:
    """A decoding engine whose sample with seed BASE_SEED + g says texts[g]."""

    texts: Sequence[str]
    logprobs: Sequence[float]

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(model="list", max_model_len=4096, engine="list", version="0")

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        assert spec.seed is not None
        offset = spec.seed - BASE_SEED
        deltas = []
        for i in range(spec.n):
            g = offset + i
            token = TokenLogprob(token="x", logprob=self.logprobs[g])
            deltas.append(SampleDelta(i, self.texts[g], 1, [token], "stop"))
        yield GenerationChunk(prompt_tokens=3, deltas=deltas)


SCRIPTS: dict[str, list[str | None]] = {
    "unanimous": ["5"] * 16,
    "alternating": ["5", "6"] * 8,
    "late-leader": ["1", "2", "3", "4", *["5"] * 12],
    "unparsed": [None, "5"] * 8,
    "all-different": [str(i) for i in range(16)],
    "early-wrong-run": ["7"] * 5 + ["5"] * 11,
    "no-answers": [None] * 16,
}
LOGPROBS = [-0.1 * (1 + (i % 5)) for i in range(16)]


def _key(answer: str | None) -> str | None:
    judged = None if answer is None else AnswerNormalizer("auto").key_now(answer)
    return None if judged is None else judged.canonical.key


@pytest.mark.parametrize("script", SCRIPTS, ids=list(SCRIPTS))
@pytest.mark.parametrize("rule", [BetaStopping(), WindowStopping()], ids=["beta", "esc"])
async def test_adaptive_replay_matches_self_consistency(script: str, rule: StoppingRule) -> None:
    answers = SCRIPTS[script]
    engine = ListEngine([text_of(a) for a in answers], LOGPROBS)
    spec = SamplingSpec(temperature=0.7, seed=BASE_SEED, max_tokens=32)
    plan = ConsistencyPlan(samples=16, adaptive=True, stopping=rule)
    live = await self_consistency(engine, TextPrompt("q"), spec, plan)
    replayed = simulate_adaptive(run_of(answers, logprobs=LOGPROBS).samples, rule)
    assert replayed.used == len(live.samples)
    assert replayed.key == (None if live.abstained else _key(live.answer))


@pytest.mark.parametrize("script", SCRIPTS, ids=list(SCRIPTS))
@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
async def test_prefix_vote_equals_an_n_sample_request(script: str, n: int) -> None:
    answers = SCRIPTS[script]
    engine = ListEngine([text_of(a) for a in answers], LOGPROBS)
    spec = SamplingSpec(temperature=0.7, seed=BASE_SEED, max_tokens=32)
    live = await self_consistency(engine, TextPrompt("q"), spec, ConsistencyPlan(samples=n))
    prefix = majority_of(run_of(answers, logprobs=LOGPROBS).samples[:n])
    assert prefix.key == (None if live.abstained else _key(live.answer))
    assert prefix.agreement == pytest.approx(live.agreement)


@pytest.mark.parametrize(
    ("answers", "logprobs", "key", "correct"),
    [
        (["5", "5", "6"], None, "num:5/1", True),
        (["6", "6", "5"], None, "num:6/1", False),
        (["6", "5"], [-2.0, -0.1], "num:5/1", True),  # a tie goes to the likelier answer
        (["6", "5"], [-0.1, -2.0], "num:6/1", False),
        ([None, None, "5"], None, "num:5/1", True),  # unparsed samples do not vote
        ([None, None], None, None, False),
        (["5.0", "5", "6", "6"], [-1.0, -1.0, -1.0, -1.0], "num:5/1", True),  # equal forms join
    ],
)
def test_majority(
    answers: list[str | None], logprobs: list[float] | None, key: str | None, correct: bool
) -> None:
    assert decide("majority", run_of(answers, logprobs=logprobs)) == (key, correct)


def test_truncated_samples_vote_only_with_marked_answers_unless_fallback() -> None:
    texts = ["The answer is 6.", "The answer is 6.", "so far 5", "so far 5", "so far 5"]
    run = run_of(["6", "6", None, None, None], finish=["stop"] * 2 + ["length"] * 3, texts=texts)
    assert decide("majority", run) == ("num:6/1", False)
    assert decide("majority-fallback", run) == ("num:5/1", True)


def test_logprob_and_cisc_weights_can_overturn_a_count() -> None:
    run = run_of(["6", "6", "5"], logprobs=[-3.0, -3.0, -0.05])
    assert decide("majority", run) == ("num:6/1", False)
    assert decide("logprob", run) == ("num:5/1", True)  # e^-0.05 > 2 e^-3
    assert decide("cisc", run) == ("num:5/1", True)


def test_cisc_prefers_deepconf_mean_over_logprobs() -> None:
    fields = [
        {"mean": 0.1, "lowest_group": 0.1, "tail": 0.1},
        {"mean": 0.9, "lowest_group": 0.9, "tail": 0.9},
    ]
    run = run_of(["6", "5"], logprobs=[-0.1, -2.0], confidence=fields)
    assert decide("cisc", run) == ("num:5/1", True)


def test_deepconf_rules_need_their_fields() -> None:
    assert RULES["deepconf-tail"](run_of(["5"]).samples, Context()) is None
    fields = [
        {"mean": 3.0, "lowest_group": 1.0, "tail": 9.0},
        {"mean": 3.0, "lowest_group": 5.0, "tail": 1.0},
    ]
    run = run_of(["6", "5"], confidence=fields)
    assert decide("deepconf-lowest-group", run) == ("num:5/1", True)
    assert decide("deepconf-tail", run) == ("num:6/1", False)


def test_top_share_keeps_the_most_confident_samples() -> None:
    answers = ["6"] * 9 + ["5"]
    logprobs = [-1.0] * 9 + [-0.01]
    run = run_of(answers, logprobs=logprobs)
    assert decide("top10", run) == ("num:5/1", True)  # one sample kept: the confident one
    assert decide("top90", run) == ("num:6/1", False)


def test_greedy_counts_as_one_more_vote() -> None:
    run = run_of(["6", "5"], logprobs=[-1.0, -1.0])
    greedy = run_of(["5"]).samples[0]
    assert decide("majority", run) == ("num:6/1", False)
    assert decide("greedy+vote", run, greedy) == ("num:5/1", True)
    assert RULES["greedy+vote"](run.samples, Context()) is None


def test_malformed_confidence_fields_are_ignored() -> None:
    run = run_of(["5", "5"], confidence=["high", {"tail": "x", "lowest_group": float("nan")}])
    assert all(not s.confidence for s in run.samples)
