"""Adaptive precise mode on a paced fake engine: every sample its own request, stopped inside one
batch (consensus, decided, budget), pruned in flight (DeepConf), and the greedy vote; the engine
sees each abort and stops generating, and every record says how its sample ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from decoding import (
    BetaStopping,
    ConsistencyPlan,
    ConsistencyResult,
    EngineInfo,
    GenerationChunk,
    Prompt,
    RoundProgress,
    SampleDelta,
    SamplingSpec,
    TextPrompt,
    TokenLogprob,
    WindowStopping,
    self_consistency,
)
from decoding.confidence import ConfidenceSpec
from decoding.pruning import PruneSpec

PROMPT = TextPrompt("What is 6 * 7?")
BASE = 100
SHORT = "The answer is 7."
FILLER = " ".join(["step"] * 40)


def long(answer: str) -> str:
    return f"{FILLER} so the answer is {answer}."


@dataclass
class SeedEngine:
    """The sample seeded ``BASE + g`` says ``texts[g]``, one word per engine step (the greedy
    request, unseeded, says ``greedy``); each token's confidence is ``confidence[g]``.

    It records every request, the seeds of the requests closed before they finished
    (``aborted``) and every token it generated (``tokens``), so aborted work is visible."""

    texts: list[str]
    confidence: dict[int, float] = field(default_factory=dict)
    greedy: str = "The answer is 7."
    fail_seed: int | None = None
    calls: list[SamplingSpec] = field(default_factory=list)
    aborted: list[int | None] = field(default_factory=list)
    tokens: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(model="seeded", max_model_len=4096, engine="seeded", version="0")

    def _words(self, seed: int | None, i: int) -> tuple[int, list[str]]:
        if seed is None:
            return -1, self.greedy.split(" ")
        g = seed + i - BASE
        return g, self.texts[g].split(" ")

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        self.calls.append(spec)
        self.started.set()
        plan = {i: self._words(spec.seed, i) for i in range(spec.n)}
        done = False
        pending: list[SampleDelta] = []
        try:
            for step in range(max(len(w) for _, w in plan.values())):
                await asyncio.sleep(0)  # one engine step
                if spec.seed is not None and spec.seed == self.fail_seed and step == 2:
                    raise RuntimeError("engine exploded")
                deltas = []
                for i, (g, words) in enumerate(plan.values()):
                    if step < len(words):
                        self.tokens += 1
                        deltas.append(self._delta(spec, i, g, words, step))
                if stream:
                    yield GenerationChunk(prompt_tokens=5, deltas=deltas)
                else:
                    pending.extend(deltas)
            if not stream:
                yield GenerationChunk(prompt_tokens=5, deltas=pending)
            done = True
        finally:
            if not done:
                self.aborted.append(spec.seed)

    def _delta(
        self, spec: SamplingSpec, i: int, g: int, words: list[str], step: int
    ) -> SampleDelta:
        word = words[step] if step == 0 else " " + words[step]
        score = self.confidence.get(g, 5.0)
        top = ((word, -score),) if spec.logprobs else ()
        last = step == len(words) - 1
        logprobs = [TokenLogprob(word, -score, top)] if spec.logprobs is not None else None
        return SampleDelta(i, word, 1, logprobs, "stop" if last else None)


async def vote(engine: SeedEngine, **kwargs: Any) -> ConsistencyResult:
    spec = SamplingSpec(temperature=0.7, seed=BASE, max_tokens=64, logprobs=kwargs.pop("k", 0))
    plan = ConsistencyPlan(samples=len(engine.texts), **kwargs)
    return await self_consistency(engine, PROMPT, spec, plan)


def _window(size: int) -> ConfidenceSpec:
    return ConfidenceSpec(top_k=1, window=size, tail=size)


def ended(result: ConsistencyResult) -> list[tuple[str | None, str | None, bool]]:
    return [(s.finish_reason, s.stopped, s.voted) for s in result.samples]


async def test_unanimous_finishers_stop_the_batch_and_abort_the_rest() -> None:
    engine = SeedEngine([SHORT] * 4 + [long("7")] * 12)
    result = await vote(engine, adaptive=True)
    assert [(s.n, s.seed) for s in engine.calls] == [(1, BASE + i) for i in range(16)]
    assert result.engine_requests == 16
    assert result.stopped_early and result.stop_reason == "consensus"  # 31/32 after four
    assert (result.answer, result.samples_used, result.agreement) == ("7", 4, 1.0)
    assert ended(result) == [("stop", None, True)] * 4 + [("abort", "consensus", False)] * 12
    assert sorted(engine.aborted) == [BASE + i for i in range(4, 16)]  # the engine saw them go
    assert [s.seed for s in result.samples] == [BASE + i for i in range(16)]
    full = 4 * 4 + 12 * len(long("7").split(" "))
    assert result.completion_tokens == sum(s.token_count for s in result.samples)
    # The engine stopped generating them: well short of the full texts. (How many steps run
    # between the decision and the aborts depends on how long judging took, so not exact.)
    assert result.completion_tokens <= engine.tokens < full / 2


async def test_a_vote_the_running_samples_cannot_change_is_decided() -> None:
    texts = [SHORT] * 9 + [long("8")] * 7
    engine = SeedEngine(texts)
    result = await vote(engine, adaptive=True, stopping=BetaStopping(threshold=1.0))
    assert result.stop_reason == "decided"  # 9 votes against at most 7
    assert result.answer == "7" and result.samples_used == 9
    assert len(engine.aborted) == 7


async def test_a_weighted_vote_is_never_decided_by_counting() -> None:
    # Seven confident samples may outweigh nine hesitant ones: only the rule may stop early.
    engine = SeedEngine([SHORT] * 9 + [long("8")] * 7, {g: 9.0 for g in range(9, 16)})
    result = await vote(
        engine,
        adaptive=True,
        stopping=BetaStopping(threshold=1.0),
        weighting="mean",
        k=1,
        confidence=_window(4),
    )
    assert result.stop_reason is None and engine.aborted == []
    assert result.samples_used == 16


async def test_split_answers_run_every_sample_to_its_end() -> None:
    engine = SeedEngine([SHORT, "The answer is 8.", long("9"), long("7"), long("8")])
    result = await vote(engine, adaptive=True)
    assert not result.stopped_early and result.stop_reason is None
    assert engine.aborted == [] and result.samples_used == 5
    assert all(s.stopped is None for s in result.samples)


async def test_esc_stops_on_a_window_of_finishers() -> None:
    texts = ["The answer is 8.", *[SHORT] * 3, *[long("7")] * 4]
    result = await vote(SeedEngine(texts), adaptive=True, stopping=WindowStopping(window=3))
    assert result.stop_reason == "consensus" and result.samples_used == 4


async def test_without_adaptive_one_request_draws_the_same_samples() -> None:
    texts = [SHORT, "The answer is 8.", long("7"), SHORT]
    one = SeedEngine(texts)
    fixed = await vote(one)
    lanes = SeedEngine(texts)
    fanned = await vote(lanes, adaptive=True, stopping=BetaStopping(threshold=1.0))
    assert [(s.n, s.seed) for s in one.calls] == [(4, BASE)]
    assert [(r.seed, r.text) for r in fixed.samples] == [(r.seed, r.text) for r in fanned.samples]
    assert fixed.answer == fanned.answer == "7"


async def test_pruning_aborts_weak_traces_after_the_warm_up() -> None:
    texts = [SHORT, SHORT, long("8"), long("8"), long("7"), long("7")]
    confidence = {0: 5.0, 1: 4.0, 2: 1.0, 3: 1.5, 4: 6.0, 5: 4.5}
    engine = SeedEngine(texts, confidence)
    prune = PruneSpec(warmup=2, percentile=0.0)  # the bar: the weakest warm-up sample, 4.0
    result = await vote(engine, prune=prune, k=1, confidence=_window(4))
    assert result.threshold == pytest.approx(4.0) and result.warmup == (0, 1)
    assert sorted(engine.aborted) == [BASE + 2, BASE + 3]
    assert ended(result) == [
        ("stop", None, True),
        ("stop", None, True),
        ("abort", "pruned", False),
        ("abort", "pruned", False),
        ("stop", None, True),
        ("stop", None, True),
    ]
    assert result.answer == "7" and result.samples_used == 4
    assert not result.stopped_early  # pruning alone never ends the vote


async def test_warm_up_samples_below_the_bar_do_not_vote() -> None:
    texts = [SHORT, "The answer is 8.", SHORT, long("7")]
    engine = SeedEngine(texts, {0: 5.0, 1: 1.0, 2: 4.0, 3: 6.0})
    prune = PruneSpec(warmup=3, percentile=50.0)  # median of 5, 1, 4: 4.0
    result = await vote(engine, prune=prune, k=1, confidence=_window(4))
    assert result.threshold == pytest.approx(4.0)
    assert [(s.answer, s.stopped, s.voted) for s in result.samples][:2] == [
        ("7", None, True),
        ("8", "pruned", False),  # it finished, and says what it would have voted
    ]
    assert [(g.answer, g.count) for g in result.votes] == [("7", 3)]


async def test_a_warm_up_sample_pruned_after_it_ended_keeps_its_ending() -> None:
    texts = ["The answer is 8.", "So the answer is 7.", long("7")]
    engine = SeedEngine(texts, {0: 1.0, 1: 5.0, 2: 6.0})
    prune = PruneSpec(warmup=2, percentile=50.0)  # calibrated when sample 1 ends: 3.0
    result = await vote(engine, prune=prune, k=1, confidence=_window(4))
    assert result.threshold == pytest.approx(3.0) and result.warmup == (0, 1)
    assert ended(result) == [("stop", "pruned", False), ("stop", None, True), ("stop", None, True)]
    assert engine.aborted == [] and result.answer == "7"


async def test_the_greedy_vote_is_one_more_sample() -> None:
    engine = SeedEngine(["The answer is 8.", "The answer is 7.", "The answer is 9."])
    result = await vote(engine, greedy_vote=True)
    [fanned, greedy] = engine.calls
    assert (fanned.n, fanned.seed) == (3, BASE)
    assert (greedy.n, greedy.temperature, greedy.seed) == (1, 0.0, None)
    assert [(s.index, s.greedy, s.seed) for s in result.samples][-1] == (3, True, None)
    assert result.samples_used == 4 and result.engine_requests == 2


async def test_deadline_aborts_the_running_samples_as_budget() -> None:
    texts = [SHORT, SHORT] + [" ".join(["step"] * 100_000)] * 2
    engine = SeedEngine(texts)
    result = await vote(engine, adaptive=True, deadline_ms=1000)
    assert result.budget_reason == "deadline" and not result.stopped_early
    assert [s.stopped for s in result.samples] == [None, None, "budget", "budget"]
    assert sorted(engine.aborted) == [BASE + 2, BASE + 3]
    assert result.answer == "7" and result.samples_used == 2


async def test_every_settled_sample_is_reported() -> None:
    reports: list[RoundProgress] = []
    engine = SeedEngine([SHORT, "The answer is 8.", long("7")])
    spec = SamplingSpec(temperature=0.7, seed=BASE, max_tokens=64)
    plan = ConsistencyPlan(samples=3, adaptive=True)
    await self_consistency(engine, PROMPT, spec, plan, on_round=reports.append)
    assert [r.round for r in reports] == [1, 2, 3]
    assert sorted(r.sample for r in reports if r.sample is not None) == [0, 1, 2]
    assert reports[-1].tallies == {"7": 2, "8": 1} and reports[-1].running == 0
    assert [r.samples_drawn for r in reports] == [1, 2, 3]


async def test_one_failing_request_fails_the_vote_and_closes_the_others() -> None:
    engine = SeedEngine([long("7")] * 4, fail_seed=BASE + 1)
    with pytest.raises(RuntimeError, match="exploded"):
        await vote(engine, adaptive=True)
    assert sorted(s for s in engine.aborted if s is not None) == [BASE + i for i in range(4)]


async def test_cancelling_the_caller_aborts_every_request() -> None:
    engine = SeedEngine([" ".join(["step"] * 100_000)] * 3)
    task = asyncio.create_task(vote(engine, adaptive=True))
    await engine.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(s for s in engine.aborted if s is not None) == [BASE, BASE + 1, BASE + 2]
