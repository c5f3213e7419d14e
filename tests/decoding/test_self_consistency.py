"""Precise mode over a scripted engine: request shape, budgets, abstention, judging, errors
(adaptive votes: ``test_adaptive.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from decoding import (
    ConsistencyPlan,
    Engine,
    EngineInfo,
    FinishReason,
    GenerationChunk,
    InProcessJudge,
    JudgeFailed,
    Prompt,
    SampleDelta,
    SamplingSpec,
    TextPrompt,
    TokenLogprob,
    WindowStopping,
    self_consistency,
)

PROMPT = TextPrompt("What is 6 * 7?")
T = TypeVar("T")


@dataclass
class ScriptedEngine:
    """Sample g (counted over all requests) says ``texts[g % len(texts)]``, one word per token.

    ``endless`` samples never finish: they stream filler forever, or, when not streaming, the
    engine blocks after sending what did finish. ``aborted`` counts requests closed early.
    """

    texts: list[str]
    endless: set[int] = field(default_factory=set)
    logprobs: dict[int, float] = field(default_factory=dict)
    finish: dict[int, FinishReason] = field(default_factory=dict)
    fail_after_chunks: int | None = None
    calls: list[tuple[SamplingSpec, bool]] = field(default_factory=list)
    aborted: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    drawn: int = 0

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(model="scripted", max_model_len=4096, engine="scripted", version="0")

    def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        self.calls.append((spec, stream))
        offset, self.drawn = self.drawn, self.drawn + spec.n
        return self._run(offset, spec, stream)

    def _delta(self, spec: SamplingSpec, i: int, g: int, word: str, last: bool) -> SampleDelta:
        lp = [TokenLogprob(word, self.logprobs.get(g, -0.5))] if spec.logprobs is not None else None
        reason = self.finish.get(g, "stop") if last else None
        return SampleDelta(index=i, text=word, token_count=1, logprobs=lp, finish_reason=reason)

    async def _run(
        self, offset: int, spec: SamplingSpec, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        completed = False
        self.started.set()
        try:
            words = {
                i: self.texts[(offset + i) % len(self.texts)].split(" ") for i in range(spec.n)
            }
            step, chunks = 0, 0
            pending: list[SampleDelta] = []
            hangs = any(offset + i in self.endless for i in range(spec.n))
            while any(step < len(w) for w in words.values()):
                deltas = []
                for i, w in words.items():
                    if step < len(w):
                        endless = offset + i in self.endless
                        last = step == len(w) - 1 and not endless
                        text = w[step] if step == 0 else " " + w[step]
                        deltas.append(self._delta(spec, i, offset + i, text, last))
                        if endless:
                            w.append("blah")
                step += 1
                if stream:
                    yield GenerationChunk(prompt_tokens=7, deltas=deltas)
                    chunks += 1
                    if self.fail_after_chunks is not None and chunks >= self.fail_after_chunks:
                        raise RuntimeError("engine exploded")
                    await asyncio.sleep(0)
                else:
                    pending.extend(deltas)
                if not stream and hangs and step > 64:
                    break
            if not stream:
                yield GenerationChunk(prompt_tokens=7, deltas=pending)
                if hangs:
                    await asyncio.Event().wait()  # the rest never finishes
            completed = True
        finally:
            if not completed:
                self.aborted += 1


def plan(**kwargs: Any) -> ConsistencyPlan:
    return ConsistencyPlan(**kwargs)


def test_the_fake_is_an_engine() -> None:
    assert isinstance(ScriptedEngine(["x"]), Engine)


@pytest.mark.asyncio
async def test_one_sample_is_one_greedy_request() -> None:
    engine = ScriptedEngine(["The answer is 42."])
    spec = SamplingSpec(temperature=0.8, seed=3)
    result = await self_consistency(engine, PROMPT, spec, plan(samples=1))
    [(sent, stream)] = engine.calls
    assert (sent.n, sent.temperature, sent.logprobs, stream) == (1, 0.0, 0, False)
    assert (result.answer, result.text, result.agreement) == ("42", "The answer is 42.", 1.0)
    assert result.samples_used == 1 and result.engine_requests == 1


@pytest.mark.asyncio
async def test_n_samples_are_one_engine_request() -> None:
    texts = ["so 42.", "The answer is 41.", "#### 42", "\\boxed{42}", "I think 1,000."]
    engine = ScriptedEngine(texts, logprobs={0: -0.9, 2: -0.1, 3: -0.3})
    spec = SamplingSpec(temperature=0.7, seed=100, max_tokens=64, logprobs=2)
    result = await self_consistency(engine, PROMPT, spec, plan(samples=5))
    [(sent, _)] = engine.calls
    assert (sent.n, sent.temperature, sent.seed, sent.logprobs) == (5, 0.7, 100, 2)
    assert result.answer == "42" and result.agreement == pytest.approx(3 / 5)
    assert result.winner_index == 2 and result.text == "#### 42"  # most confident of the group
    assert [(g.answer, g.count, g.indices) for g in result.votes] == [
        ("42", 3, (0, 2, 3)),
        ("41", 1, (1,)),
        ("1000", 1, (4,)),
    ]
    assert [s.seed for s in result.samples] == [100, 101, 102, 103, 104]
    assert [s.answer for s in result.samples] == ["42", "41", "42", "42", "1,000"]
    assert result.samples[2].mean_logprob == pytest.approx(-0.1)
    assert result.prompt_tokens == 7
    assert result.completion_tokens == sum(len(t.split(" ")) for t in texts)
    assert not (result.stopped_early or result.budget_exhausted or result.abstained)


@pytest.mark.asyncio
async def test_latex_answers_are_parsed_off_the_main_thread() -> None:
    texts = ["so \\boxed{\\frac{1}{2}}", "The answer is 0.5.", "\\boxed{\\sqrt{2}}"]
    result = await self_consistency(ScriptedEngine(texts), PROMPT, SamplingSpec(), plan(samples=3))
    assert (result.answer, result.agreement) == ("0.5", pytest.approx(2 / 3))
    assert [g.answer for g in result.votes] == ["0.5", "\\sqrt{2}"]


@pytest.mark.asyncio
async def test_deadline_votes_on_what_finished() -> None:
    engine = ScriptedEngine(["answer is 5.", "answer is 5.", "answer is 6.", "x"], endless={3})
    result = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=4, deadline_ms=50))
    assert engine.aborted == 1
    assert result.budget_exhausted and result.budget_reason == "deadline"
    assert result.answer == "5" and result.samples_used == 3
    assert result.agreement == pytest.approx(2 / 3)
    assert [(s.finish_reason, s.voted) for s in result.samples][-1] == ("abort", False)
    assert result.completion_tokens == sum(s.token_count for s in result.samples)


@pytest.mark.asyncio
async def test_token_budget_cuts_the_request_and_votes_on_the_finished() -> None:
    texts = ["the answer is 9.", "answer is 9.", "x", "x"]
    engine = ScriptedEngine(texts, endless={2, 3})
    result = await self_consistency(
        engine, PROMPT, SamplingSpec(), plan(samples=4, max_total_tokens=30)
    )
    [(_, stream)] = engine.calls
    assert stream and engine.aborted == 1
    assert result.budget_reason == "max_total_tokens" and result.answer == "9"
    assert result.samples_used == 2 and result.agreement == 1.0
    assert 30 <= result.completion_tokens < 34


@pytest.mark.asyncio
async def test_all_unparsable_abstains() -> None:
    engine = ScriptedEngine(["no idea", "cannot say"])
    result = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=4))
    assert result.abstained and result.abstain_code == "no_answer"
    assert (result.answer, result.text, result.winner_index) == (None, None, None)
    assert (result.parsed, result.unparsed, result.samples_used) == (0, 4, 4)


@pytest.mark.asyncio
async def test_low_agreement_abstains_but_keeps_the_votes() -> None:
    engine = ScriptedEngine(["answer is 1.", "answer is 2.", "answer is 3.", "answer is 1."])
    result = await self_consistency(
        engine, PROMPT, SamplingSpec(), plan(samples=4, min_agreement=0.6)
    )
    assert result.abstained and result.abstain_code == "low_agreement"
    assert result.answer is None and result.votes[0].answer == "1"


@pytest.mark.asyncio
async def test_truncated_samples_vote_only_with_a_marked_answer() -> None:
    texts = ["answer is 3.", "we had 4 then 5", "so \\boxed{3}"]
    engine = ScriptedEngine(texts, finish={1: "length", 2: "length"})
    result = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=3))
    assert [s.answer for s in result.samples] == ["3", None, "3"]
    assert (result.unparsed, result.agreement) == (1, 1.0)


@pytest.mark.asyncio
async def test_truncated_votes_any_lets_cut_samples_vote_with_their_last_number() -> None:
    texts = ["answer is 3.", "we had 4 then 5", "so \\boxed{3}"]
    engine = ScriptedEngine(texts, finish={1: "length", 2: "length"})
    result = await self_consistency(
        engine, PROMPT, SamplingSpec(), plan(samples=3, truncated_votes="any")
    )
    assert [s.answer for s in result.samples] == ["3", "5", "3"]
    assert result.unparsed == 0


@pytest.mark.asyncio
async def test_one_greedy_sample_cut_by_max_tokens_still_answers_and_says_so() -> None:
    engine = ScriptedEngine(["first 12 then 81 and then"], finish={0: "length"})
    result = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=1))
    assert (result.answer, result.truncated, result.abstained) == ("81", True, False)
    whole = await self_consistency(
        ScriptedEngine(["answer is 81."]), PROMPT, SamplingSpec(), plan(samples=1)
    )
    assert (whole.answer, whole.truncated) == ("81", False)


@pytest.mark.asyncio
async def test_keep_top_leaves_the_least_confident_out_of_the_vote() -> None:
    texts = ["answer is 1.", "answer is 2.", "answer is 2.", "answer is 1.", "answer is 1."]
    lps = {0: -3.0, 1: -0.1, 2: -0.2, 3: -2.0, 4: -2.5}
    engine = ScriptedEngine(texts, logprobs=lps)
    everyone = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=5))
    assert everyone.answer == "1"
    engine = ScriptedEngine(texts, logprobs=lps)
    filtered = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=5, keep_top=0.4))
    assert filtered.answer == "2"
    assert [s.voted for s in filtered.samples] == [False, True, True, False, False]
    assert filtered.samples_used == 5, "the cost is every sample drawn"


@pytest.mark.asyncio
async def test_tie_break_prefers_the_more_confident_answer() -> None:
    texts = ["answer is 1.", "answer is 2.", "answer is 1.", "answer is 2."]
    engine = ScriptedEngine(texts, logprobs={0: -2.0, 1: -0.2, 2: -2.0, 3: -0.3})
    result = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=4))
    assert (result.answer, result.winner_index) == ("2", 1)


class SlowOnOne(InProcessJudge):
    """Judges in process, but says ``timeout`` for one formula, as the server's pool would."""

    def __init__(self, slow: str) -> None:
        super().__init__()
        self.slow = slow
        self.judged: list[str] = []

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        self.judged.extend(a for a in args if isinstance(a, str))
        if self.slow in args:
            raise JudgeFailed("timeout")
        return await super().run(fn, *args)


@pytest.mark.asyncio
async def test_every_record_says_how_its_answer_was_judged() -> None:
    texts = [
        "answer is 5.",
        "no idea",
        "so \\boxed{\\sqrt{2}}",
        "so \\boxed{x^{x^{x}}}",
        "answer is 5.",
    ]
    judge = SlowOnOne("x^{x^{x}}")
    engine = ScriptedEngine(texts)
    result = await self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=5), judge=judge)
    assert [(r.answer, r.canonical, r.judge) for r in result.samples] == [
        ("5", "5", "ok"),
        (None, None, None),
        ("\\sqrt{2}", "\\sqrt{2}", "ok"),
        ("x^{x^{x}}", "x^{x^{x}}", "timeout"),  # kept as its text, and still votes
        ("5", "5", "ok"),
    ]
    assert [(g.answer, g.count) for g in result.votes] == [
        ("5", 2),
        ("\\sqrt{2}", 1),
        ("x^{x^{x}}", 1),
    ]
    assert sorted(judge.judged) == ["\\sqrt{2}", "x^{x^{x}}"]  # only formulas, once each


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the jobs it is given."""

    submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.asyncio
async def test_parsing_and_voting_run_in_the_given_executor() -> None:
    engine = ScriptedEngine(["answer is 1."])
    with CountingExecutor(max_workers=1) as pool:
        result = await self_consistency(
            engine, PROMPT, SamplingSpec(), plan(samples=3), executor=pool
        )
    assert pool.submitted == 2  # one extraction batch, one vote
    assert result.answer == "1"


@pytest.mark.asyncio
async def test_engine_errors_propagate() -> None:
    engine = ScriptedEngine(["answer is 1."], fail_after_chunks=1)
    with pytest.raises(RuntimeError, match="exploded"):
        await self_consistency(
            engine, PROMPT, SamplingSpec(), plan(samples=2, max_total_tokens=100)
        )
    assert engine.aborted == 1


@pytest.mark.asyncio
async def test_cancelling_the_caller_aborts_the_engine_request() -> None:
    engine = ScriptedEngine(["x"], endless={0})
    task = asyncio.create_task(self_consistency(engine, PROMPT, SamplingSpec(), plan(samples=1)))
    await engine.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.aborted == 1


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"samples": 0}, "samples"),
        ({"min_agreement": 1.5}, "min_agreement"),
        ({"answer_format": "xml"}, "answer_format"),
        ({"max_total_tokens": 0}, "max_total_tokens"),
        ({"deadline_ms": 0}, "deadline_ms"),
    ],
)
def test_plan_is_validated(kwargs: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValueError, match=field_name):
        ConsistencyPlan(**kwargs)


def test_plan_defaults() -> None:
    default = ConsistencyPlan()
    assert (default.samples, default.answer_format, default.min_agreement) == (1, "auto", 0.0)
    assert default.stopping == WindowStopping(window=3)  # the measured default (bench/README.md)
    assert (default.prune, default.greedy_vote, default.fan_out) == (None, False, False)


def test_greedy_vote_needs_samples() -> None:
    with pytest.raises(ValueError, match="greedy_vote"):
        ConsistencyPlan(samples=1, greedy_vote=True)
