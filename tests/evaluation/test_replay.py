"""The adaptive replay takes the live decisions: a fixed vote's recorded samples, replayed step
by step, stop, prune and spend tokens as ``self_consistency`` does on the same samples."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from decoding import (
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
from decoding.confidence import ConfidenceSpec
from decoding.pruning import PruneSpec
from evaluation.judge import judge_record
from evaluation.rules import replay_adaptive

BASE = 1000
WINDOW = 4


@dataclass(frozen=True)
class Trace:
    """A recorded sample: its answer, its length in tokens, its per-token confidence."""

    answer: str
    tokens: int
    confidence: float = 5.0

    @property
    def words(self) -> list[str]:
        tail = f"so the answer is {self.answer}.".split(" ")
        return ["step"] * (self.tokens - len(tail)) + tail


@dataclass
class TraceEngine:
    """The sample seeded ``BASE + g`` streams ``traces[g]`` one token per engine step."""

    traces: Sequence[Trace]
    generated: int = 0
    calls: list[SamplingSpec] = field(default_factory=list)

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(model="trace", max_model_len=4096, engine="trace", version="0")

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        assert spec.seed is not None and stream and spec.n == 1
        self.calls.append(spec)
        trace = self.traces[spec.seed - BASE]
        for step, word in enumerate(trace.words):
            await asyncio.sleep(0)
            self.generated += 1
            text = word if step == 0 else " " + word
            lp = TokenLogprob(word, -trace.confidence, ((word, -trace.confidence),))
            last = "stop" if step == trace.tokens - 1 else None
            yield GenerationChunk(3, [SampleDelta(0, text, 1, [lp], last)])


def recorded(traces: Sequence[Trace]) -> Any:
    """The fixed vote's record of these traces, as a results file holds it."""
    samples = [
        {
            "index": g,
            "text": " ".join(t.words),
            "finish_reason": "stop",
            "seed": BASE + g,
            "mean_logprob": -0.5,
            "tokens": t.tokens,
            "token_confidences": [t.confidence] * t.tokens,
        }
        for g, t in enumerate(traces)
    ]
    record = {
        "item": {"id": "q", "set": "s", "split": "dev", "answer": "7", "kind": "number"},
        "config": {"name": "c", "samples": len(traces)},
        "request": {"answer_format": "auto"},
        "response": {"answer": None, "samples": samples, "usage": {}, "receipt": {}},
    }
    return judge_record(record).samples


# Lengths four or more steps apart, so each finish is its own engine step live as well.
CASES: dict[str, list[Trace]] = {
    "unanimous": [Trace("7", 10 + 4 * g) for g in range(8)],
    "split": [Trace("7" if g % 2 else "8", 10 + 4 * g) for g in range(8)],
    "late-leader": [Trace("8", 10), Trace("9", 14), *[Trace("7", 18 + 4 * g) for g in range(6)]],
    "weak-tail": [
        *[Trace("7", 10 + 4 * g, 5.0) for g in range(3)],
        *[Trace("8", 40 + 4 * g, 1.0) for g in range(5)],
    ],
}
RULES: dict[str, StoppingRule] = {"beta": BetaStopping(), "esc": WindowStopping(window=3)}
PRUNES: dict[str, PruneSpec | None] = {"none": None, "p10": PruneSpec(2, 10.0)}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("prune", PRUNES)
async def test_replay_matches_the_live_vote(case: str, rule: str, prune: str) -> None:
    traces = CASES[case]
    engine = TraceEngine(traces)
    plan = ConsistencyPlan(
        samples=len(traces),
        adaptive=True,
        stopping=RULES[rule],
        prune=PRUNES[prune],
        confidence=ConfidenceSpec(top_k=1, window=WINDOW, tail=WINDOW),
    )
    spec = SamplingSpec(temperature=0.7, seed=BASE, max_tokens=128)
    live = await self_consistency(engine, TextPrompt("q"), spec, plan)
    replay = replay_adaptive(recorded(traces), RULES[rule], prune=PRUNES[prune], window=WINDOW)
    assert replay.decision.used == live.samples_used
    assert replay.decision.key == (None if live.answer is None else f"num:{live.answer}/1")
    assert replay.pruned == sum(1 for s in live.samples if s.stopped == "pruned")
    # Live, each request runs its own steps: an aborted one may be a token ahead or behind.
    assert abs(live.completion_tokens - replay.tokens) <= len(traces)


def test_replay_counts_the_tokens_an_early_stop_saves() -> None:
    traces = CASES["unanimous"]
    replay = replay_adaptive(recorded(traces), BetaStopping())
    # Four finishers (10, 14, 18, 22 tokens) settle it at step 22; four more stop there.
    assert (replay.decision.used, replay.steps) == (4, 22)
    assert replay.tokens == 10 + 14 + 18 + 22 + 4 * 22
    assert replay_adaptive(recorded(traces), None).tokens == sum(t.tokens for t in traces)
