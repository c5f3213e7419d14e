"""Precise mode: sample, extract, normalise, vote; optionally adaptively and within a budget.

- ``samples == 1``: one greedy engine request (temperature 0, n=1).
- ``samples == N > 1``: ONE engine request with ``n=N`` at the caller's temperature and seed, so the
  prompt's KV cache is shared.
- ``adaptive``: rounds of one engine request each, sized by the stopping rule (Beta: 2, 2, 4, 8,
  ...; ESC: one window), until the rule stops or N samples were drawn. Round r asks for
  ``seed + samples_so_far``, so sample g always gets the derived seed ``seed + g`` (vLLM gives
  sample i of an ``n``-request seeded s the seed s + i); adaptive and one-shot runs with the same
  seed thus draw the same samples. A None seed stays None.
- Budget: ``max_total_tokens`` (completion tokens over all rounds; the request then streams so it
  can be cut mid-generation) and ``deadline_ms`` (wall clock from the call). On expiry the engine
  request is aborted (its iterator closed), unfinished samples are marked ``abort`` and left out,
  and the vote runs on what finished, with ``budget_exhausted`` set.

Logprobs are always requested (``logprobs=0`` unless the caller asked for more) so the tie-break
can use mean token logprobs. Extraction, the cheap keys and voting run off the event loop (in the
given executor, else the loop's default thread pool, as ``asyncio.to_thread`` does); formulas are
judged by the given ``Judge`` (the server's is a pool of killable worker processes), within its
bounds (see ``decoding.normalizer``), and every sample's record says how its judging went. Samples
cut by ``max_tokens`` vote only with a marked answer (see ``extract_answer``).
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from decoding.confidence import Confidence, ConfidenceSpec, token_confidence, trace_confidence
from decoding.engine import Engine, Prompt, SamplingSpec
from decoding.equivalence import ANSWER_FORMATS, AnswerFormat
from decoding.extraction import extract_answer
from decoding.judge import InProcessJudge, Judge, Verdict
from decoding.normalizer import AnswerNormalizer, Judged
from decoding.samples import FinishReason, Sample
from decoding.stopping import BetaStopping, StoppingRule
from decoding.voting import AbstainCode, Ballot, VoteGroup, VoteResult, vote
from decoding.weighting import DEFAULT_CISC_TEMPERATURE, WEIGHTINGS, Weighting, weigh

BudgetReason = Literal["deadline", "max_total_tokens"]
TruncatedVotes = Literal["marked", "any"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ConsistencyPlan:
    """How precise mode samples and decides: sample cap, format, abstention, adaptivity, budget."""

    samples: int = 1
    answer_format: AnswerFormat = "auto"
    min_agreement: float = 0.0
    adaptive: bool = False
    stopping: StoppingRule = field(default_factory=BetaStopping)
    max_total_tokens: int | None = None
    deadline_ms: float | None = None
    confidence: ConfidenceSpec = field(default_factory=ConfidenceSpec)
    weighting: Weighting = "majority"
    keep_top: float = 1.0
    cisc_temperature: float = DEFAULT_CISC_TEMPERATURE
    truncated_votes: TruncatedVotes = "marked"

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not 0.0 < self.keep_top <= 1.0:
            raise ValueError(f"keep_top must be in (0, 1], got {self.keep_top}")
        if self.cisc_temperature <= 0:
            raise ValueError(f"cisc_temperature must be > 0, got {self.cisc_temperature}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(
                f"answer_format must be one of {ANSWER_FORMATS}, got {self.answer_format!r}"
            )
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if self.max_total_tokens is not None and self.max_total_tokens < 1:
            raise ValueError(f"max_total_tokens must be >= 1, got {self.max_total_tokens}")
        if self.deadline_ms is not None and self.deadline_ms <= 0:
            raise ValueError(f"deadline_ms must be > 0, got {self.deadline_ms}")


@dataclass(frozen=True)
class SampleRecord:
    """One sample as the response reports it: text, extracted and canonical answer, provenance."""

    index: int
    text: str
    answer: str | None
    canonical: str | None
    finish_reason: FinishReason | None
    seed: int | None
    mean_logprob: float | None
    token_count: int
    voted: bool
    judge: Verdict | None = None  # how judging its answer went; None: no answer to judge
    confidence: Confidence | None = None
    token_confidences: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ConsistencyResult:
    """All a precise-mode response needs; ``answer``, ``text``, ``winner_index`` None on abstain."""

    answer: str | None
    text: str | None
    winner_index: int | None
    agreement: float
    votes: tuple[VoteGroup, ...]
    samples: tuple[SampleRecord, ...]
    samples_used: int
    parsed: int
    unparsed: int
    abstained: bool
    abstain_code: AbstainCode | None
    abstain_reason: str | None
    stopped_early: bool
    budget_exhausted: bool
    budget_reason: BudgetReason | None
    prompt_tokens: int
    completion_tokens: int
    engine_requests: int
    truncated: bool = False  # the winning sample was cut by max_tokens


@dataclass(frozen=True)
class RoundProgress:
    """What is known after each engine round: for honest progress reports while sampling."""

    round: int
    samples_drawn: int
    samples_cap: int
    tallies: dict[str, int]
    unparsed: int


ProgressHook = Callable[[RoundProgress], None]


@dataclass
class _Round:
    samples: list[Sample]
    prompt_tokens: int
    cut: BudgetReason | None


@dataclass
class _State:
    records: list[SampleRecord] = field(default_factory=list)
    ballots: list[Ballot] = field(default_factory=list)
    prompt_tokens: int = 0
    spent: int = 0  # completion tokens
    engine_requests: int = 0
    budget_reason: BudgetReason | None = None


async def self_consistency(
    engine: Engine,
    prompt: Prompt,
    spec: SamplingSpec,
    plan: ConsistencyPlan,
    *,
    judge: Judge | None = None,
    executor: Executor | None = None,
    on_round: ProgressHook | None = None,
) -> ConsistencyResult:
    """Run precise mode over ``engine`` and return the vote with all of its evidence;
    ``judge`` bounds formula judging (default: in this process, unbounded: trusted input only);
    ``on_round`` hears the running tally after every engine round."""
    loop = asyncio.get_running_loop()
    deadline = None if plan.deadline_ms is None else loop.time() + plan.deadline_ms / 1000
    judge = InProcessJudge(executor) if judge is None else judge
    normalizer = AnswerNormalizer(plan.answer_format, judge)
    base = engine_spec(spec, plan)
    stream = plan.max_total_tokens is not None
    state = _State()
    stopped_early = False
    while len(state.records) < plan.samples:
        if (reason := _spent(state, plan, deadline, loop.time())) is not None:
            state.budget_reason = reason
            break
        drawn, remaining = len(state.records), plan.samples - len(state.records)
        size = plan.stopping.next_round(drawn, remaining) if plan.adaptive else remaining
        seed = None if spec.seed is None else spec.seed + drawn
        room = None if plan.max_total_tokens is None else plan.max_total_tokens - state.spent
        request = replace(base, n=max(1, min(size, remaining)), seed=seed)
        state.engine_requests += 1
        done = await _run_round(
            engine, prompt, request, stream=stream, deadline=deadline, room=room
        )
        state.prompt_tokens = done.prompt_tokens or state.prompt_tokens
        state.spent += sum(s.token_count for s in done.samples)
        any_cut = plan.samples == 1 or plan.truncated_votes == "any"
        answers, formulas = await _off_loop(executor, _extract, done.samples, normalizer, any_cut)
        await normalizer.judge(formulas)
        for sample, answer in zip(done.samples, answers, strict=True):
            judged = None if answer is None else normalizer.judged(answer)
            _record(state, sample, drawn, seed, answer, judged, plan.confidence)
        if on_round is not None:
            on_round(_progress(state, plan))
        if done.cut is not None:
            state.budget_reason = done.cut
            break
        more_allowed = len(state.records) < plan.samples
        if plan.adaptive and more_allowed and _rule_stops(plan.stopping, state):
            stopped_early = True
            break
    records, ballots = _vote_inputs(state, plan)
    result = await _off_loop(executor, vote, ballots, min_agreement=plan.min_agreement)
    return _result(state, records, result, stopped_early)


def engine_spec(spec: SamplingSpec, plan: ConsistencyPlan) -> SamplingSpec:
    """The sampling every round starts from: greedy for one sample, and logprobs always on
    (the sampled tokens' at least, for the tie-break; the top-k the confidence spec asks for);
    receipts report this spec."""
    logprobs = max(spec.logprobs or 0, plan.confidence.top_k)
    base = replace(spec, logprobs=logprobs)
    return replace(base, temperature=0.0) if plan.samples == 1 else base


async def _run_round(
    engine: Engine,
    prompt: Prompt,
    spec: SamplingSpec,
    *,
    stream: bool,
    deadline: float | None,
    room: int | None,
) -> _Round:
    """One engine request, aborted at the deadline or once ``room`` tokens were generated."""
    samples = [Sample(index=i) for i in range(spec.n)]
    done = _Round(samples, 0, None)
    iterator = engine.generate(prompt, spec, stream=stream)
    timeout = asyncio.timeout_at(deadline)
    try:
        async with timeout:
            async for chunk in iterator:
                done.prompt_tokens = chunk.prompt_tokens
                for delta in chunk.deltas:
                    samples[delta.index].add(delta)
                used = sum(s.token_count for s in samples)
                unfinished = any(s.finish_reason is None for s in samples)
                if room is not None and used >= room and unfinished:
                    done.cut = "max_total_tokens"
                    break
    except TimeoutError:
        if not timeout.expired():
            raise
        done.cut = "deadline"
    finally:
        await iterator.aclose()
    if done.cut is not None:
        for sample in samples:
            if sample.finish_reason is None:
                sample.finish_reason = "abort"
    return done


def _extract(
    samples: Sequence[Sample], normalizer: AnswerNormalizer, any_cut: bool = False
) -> tuple[list[str | None], list[str]]:
    """Each finished sample's answer, keyed at once where no judge is needed (runs in a worker
    thread); and the formula answers left for the judge. A sample cut by ``max_tokens`` gives
    only a marked answer unless ``any_cut`` (one greedy sample, or ``truncated_votes="any"``)."""
    answers: list[str | None] = []
    formulas: list[str] = []
    for sample in samples:
        if sample.finish_reason == "abort":
            answers.append(None)
            continue
        fallback = any_cut or sample.finish_reason != "length"
        answer = extract_answer(sample.text, normalizer.answer_format, allow_fallback=fallback)
        answers.append(answer)
        if answer is not None and normalizer.key_now(answer) is None:
            formulas.append(answer)
    return answers, formulas


def _record(
    state: _State,
    sample: Sample,
    offset: int,
    seed: int | None,
    answer: str | None,
    judged: Judged | None,
    spec: ConfidenceSpec,
) -> None:
    """Keep the sample's record; finished samples also get a ballot (aborted ones do not)."""
    index = offset + sample.index
    canonical = None if judged is None else judged.canonical
    voted = sample.finish_reason != "abort"
    display = None if canonical is None else canonical.display
    sample_seed = None if seed is None else seed + sample.index
    lp, tokens, reason = sample.mean_logprob, sample.token_count, sample.finish_reason
    verdict = None if judged is None else judged.verdict
    # DeepConf's confidence needs the top-k alternatives; without them there is none to report.
    logprobs = (sample.logprobs or []) if spec.top_k > 0 else []
    keep = spec.keep_tokens and spec.top_k > 0
    scores = tuple(round(token_confidence(t), 4) for t in logprobs) if keep else None
    confidence = trace_confidence(logprobs, spec.window, spec.tail)
    record = SampleRecord(
        index,
        sample.text,
        answer,
        display,
        reason,
        sample_seed,
        lp,
        tokens,
        voted,
        verdict,
        confidence,
        scores,
    )
    state.records.append(record)
    if voted:
        state.ballots.append(Ballot(index, canonical, sample.mean_logprob))


def _progress(state: _State, plan: ConsistencyPlan) -> RoundProgress:
    tallies = Counter(b.answer.display for b in state.ballots if b.answer is not None)
    return RoundProgress(
        round=state.engine_requests,
        samples_drawn=len(state.records),
        samples_cap=plan.samples,
        tallies=dict(tallies.most_common()),
        unparsed=sum(1 for b in state.ballots if b.answer is None),
    )


def _rule_stops(rule: StoppingRule, state: _State) -> bool:
    window = [None if b.answer is None else b.answer.key for b in state.ballots]
    return rule.should_stop(Counter(k for k in window if k is not None), window)


def _spent(
    state: _State, plan: ConsistencyPlan, deadline: float | None, now: float
) -> BudgetReason | None:
    if deadline is not None and now >= deadline:
        return "deadline"
    if plan.max_total_tokens is not None and state.spent >= plan.max_total_tokens:
        return "max_total_tokens"
    return None


async def _off_loop(
    executor: Executor | None, fn: Callable[..., _T], *args: object, **kwargs: object
) -> _T:
    """Run CPU-bound parsing/voting in a worker thread (default: the loop's) so the loop serves."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def _vote_inputs(state: _State, plan: ConsistencyPlan) -> tuple[list[SampleRecord], list[Ballot]]:
    """The ballots as weighted and filtered by the plan (``decoding.weighting``), and the
    records with ``voted`` false for the samples the confidence filter left out."""
    confidence = {r.index: r.confidence for r in state.records}
    ballots = weigh(state.ballots, confidence, plan.weighting, plan.keep_top, plan.cisc_temperature)
    voting = {b.index for b in ballots}
    records = [
        r if r.index in voting or not r.voted else replace(r, voted=False) for r in state.records
    ]
    return records, ballots


def _result(
    state: _State, records: list[SampleRecord], outcome: VoteResult, stopped_early: bool
) -> ConsistencyResult:
    winner = None if outcome.abstained else outcome.winner_index
    chosen = None if winner is None else next(r for r in records if r.index == winner)
    text = None if chosen is None else chosen.text
    return ConsistencyResult(
        answer=None if outcome.abstained else outcome.winner,
        text=text,
        winner_index=winner,
        agreement=outcome.agreement,
        votes=outcome.votes,
        samples=tuple(records),
        samples_used=len(state.ballots),
        parsed=outcome.parsed,
        unparsed=outcome.unparsed,
        abstained=outcome.abstained,
        abstain_code=outcome.abstain_code,
        abstain_reason=outcome.abstain_reason,
        stopped_early=stopped_early,
        budget_exhausted=state.budget_reason is not None,
        budget_reason=state.budget_reason,
        prompt_tokens=state.prompt_tokens,
        completion_tokens=state.spent,
        engine_requests=state.engine_requests,
        truncated=chosen is not None and chosen.finish_reason == "length",
    )
