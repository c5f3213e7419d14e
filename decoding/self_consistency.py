"""Precise mode: sample, extract, normalise, vote; adaptively, pruned and within a budget.

- ``samples == 1``: one greedy engine request (temperature 0, n=1).
- ``samples == N > 1``: ONE engine request with ``n=N`` at the caller's temperature and seed, so the
  prompt's KV cache is shared.
- ``adaptive`` or ``prune``: all N samples start at once, each its own engine request (``n=1``, the
  prompt shared through the engine's prefix cache) so that each can be stopped alone
  (``decoding.fanout``). Sample i is seeded ``seed + i``, the seed vLLM gives child i of an
  ``n``-request seeded ``seed``, so both shapes draw the same samples; a None seed stays None.
  Each sample is judged as soon as it finishes, and after every finish (samples finishing in
  the same engine step are taken together) the ``Referee`` decides: with ``adaptive``, stop when
  the stopping rule is satisfied (``consensus``) or the running samples can no longer change the
  vote (``decided``); with ``prune`` (DeepConf online, ``decoding.pruning``), abort the samples
  whose window confidence fell below the threshold the first finished samples calibrated. When
  the vote stops, the running samples are aborted and the vote returns at once.
- ``greedy_vote``: a greedy (temperature 0) sample joins the vote as one more sample, index N,
  its own engine request started with the others.
- Budget: ``max_total_tokens`` (completion tokens over all samples; requests then stream so they
  can be cut mid-generation) and ``deadline_ms`` (wall clock from the call). On expiry every
  running request is aborted, and the vote runs on what finished, with ``budget_exhausted`` set.

Every sample's record says how it ended: ``stopped`` is ``pruned`` (below the confidence threshold:
aborted, or finished before the threshold was known and left out), ``consensus`` (aborted because
the vote was settled) or ``budget`` (aborted by the budget); None when it ran to its end.

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
from typing import TypeVar

from decoding.confidence import Confidence, token_confidence, trace_confidence
from decoding.consistency import (
    BudgetReason,
    ConsistencyPlan,
    ConsistencyResult,
    RoundProgress,
    SampleRecord,
    SampleStop,
)
from decoding.engine import Engine, Prompt, SamplingSpec
from decoding.extraction import extract_answer
from decoding.fanout import Arrival, Fanout, Lane
from decoding.judge import InProcessJudge, Judge
from decoding.normalizer import AnswerNormalizer, Judged
from decoding.pruning import ConfidenceGate
from decoding.referee import Referee
from decoding.referee import Verdict as StopReason
from decoding.samples import Sample
from decoding.voting import Ballot, VoteResult, vote
from decoding.weighting import weigh

_T = TypeVar("_T")


@dataclass
class _Run:
    """One request's state: its samples as they stream, their answers, who decides."""

    plan: ConsistencyPlan
    lanes: list[Lane]
    referee: Referee
    samples: dict[int, Sample] = field(default_factory=dict)
    judged: dict[int, tuple[str | None, Judged | None]] = field(default_factory=dict)
    stopped: dict[int, SampleStop] = field(default_factory=dict)
    prompt_tokens: int = 0
    reports: int = 0
    settled: set[int] = field(default_factory=set)  # reported to the progress hook
    budget_reason: BudgetReason | None = None
    stop_reason: StopReason | None = None

    @property
    def spent(self) -> int:
        """Completion tokens generated so far, over all samples."""
        return sum(s.token_count for s in self.samples.values())


async def self_consistency(
    engine: Engine,
    prompt: Prompt,
    spec: SamplingSpec,
    plan: ConsistencyPlan,
    *,
    judge: Judge | None = None,
    executor: Executor | None = None,
    on_round: Callable[[RoundProgress], None] | None = None,
) -> ConsistencyResult:
    """Run precise mode over ``engine`` and return the vote with all of its evidence;
    ``judge`` bounds formula judging (default: in this process, unbounded: trusted input only);
    ``on_round`` hears the running tally after every settled sample."""
    loop = asyncio.get_running_loop()
    deadline = None if plan.deadline_ms is None else loop.time() + plan.deadline_ms / 1000
    normalizer = AnswerNormalizer(plan.answer_format, judge or InProcessJudge(executor))
    run = _start(spec, plan)
    stream = plan.fan_out or plan.max_total_tokens is not None  # samples counted as they go
    async with Fanout(engine, prompt, run.lanes, stream=stream) as fan:
        while fan.open:
            try:
                arrivals = await fan.arrivals(deadline)
            except TimeoutError:
                run.budget_reason = "deadline"
                break
            finished, pruned = _absorb(run, arrivals)
            await fan.abort(_lanes_of(run, pruned))
            for index in pruned:  # a warm-up sample that already ended keeps its ending
                if run.samples[index].finish_reason is None:
                    run.samples[index].finish_reason = "abort"
            await _judge(run, finished, normalizer, executor)
            _report(run, finished + pruned, on_round)
            if _over_budget(run) and run.referee.running:
                run.budget_reason = "max_total_tokens"
                break
            if plan.adaptive and (verdict := run.referee.verdict()) is not None:
                run.stop_reason = verdict
                break
        engine_requests = fan.started
    weighed = plan.weighting, plan.keep_top, plan.cisc_temperature
    ballots = weigh(_close(run), _confidences(run), *weighed)
    result = await _off_loop(executor, vote, ballots, min_agreement=plan.min_agreement)
    return _result(run, result, engine_requests, {b.index for b in ballots})


def engine_spec(spec: SamplingSpec, plan: ConsistencyPlan) -> SamplingSpec:
    """The sampling every request starts from: greedy for one sample, and logprobs always on
    (the sampled tokens' at least, for the tie-break; the top-k the confidence spec asks for);
    receipts report this spec."""
    logprobs = max(spec.logprobs or 0, plan.confidence.top_k)
    base = replace(spec, logprobs=logprobs)
    return replace(base, temperature=0.0) if plan.samples == 1 else base


def lanes_of(spec: SamplingSpec, plan: ConsistencyPlan) -> list[Lane]:
    """The engine requests of a vote: one of ``n=N``, or N of ``n=1`` seeded ``seed + i`` when
    samples must stop alone; and the greedy vote's, last."""
    base = engine_spec(spec, plan)
    if not plan.fan_out:
        lanes = [Lane(0, replace(base, n=plan.samples))]
    else:
        lanes = [
            Lane(i, replace(base, n=1, seed=None if spec.seed is None else spec.seed + i))
            for i in range(plan.samples)
        ]
    if plan.greedy_vote:
        lanes.append(Lane(plan.samples, replace(base, n=1, temperature=0.0, seed=None)))
    return lanes


def _start(spec: SamplingSpec, plan: ConsistencyPlan) -> _Run:
    lanes = lanes_of(spec, plan)
    gate = None if plan.prune is None else ConfidenceGate(plan.prune, plan.confidence.window)
    indices = [i for lane in lanes for i in lane.indices]
    # Counting votes tells when the running samples cannot change the winner; a weighted or
    # filtered vote can still turn, so only the stopping rule may stop it.
    counted = plan.weighting == "majority" and plan.keep_top == 1.0
    referee = Referee(
        indices,
        stopping=plan.stopping,
        gate=gate,
        min_agreement=plan.min_agreement,
        decide=counted,
    )
    run = _Run(plan, lanes, referee)
    run.samples = {i: Sample(index=i) for i in indices}
    return run


def _absorb(run: _Run, arrivals: Sequence[Arrival]) -> tuple[list[int], list[int]]:
    """Fold the arrived chunks into the samples; the samples that finished, and those pruned."""
    finished: list[int] = []
    pruned: list[int] = []
    referee = run.referee
    for arrival in arrivals:
        lane, chunk = arrival.lane, arrival.chunk
        if chunk is None:  # the request ended: its samples are over, whatever they said
            finished += [i for i in lane.indices if i in referee.running and i not in finished]
            continue
        run.prompt_tokens = chunk.prompt_tokens or run.prompt_tokens
        for delta in chunk.deltas:
            index = lane.first + delta.index
            run.samples[index].add(delta)
            scores = [token_confidence(t) for t in delta.logprobs or ()]
            if referee.tokens(index, scores):
                pruned.append(index)
            if delta.finish_reason is not None and index not in finished:
                finished.append(index)
    for index in finished:
        pruned += [i for i in referee.finish(index) if i not in pruned]
    for index in pruned:
        run.stopped[index] = "pruned"
    return finished, [i for i in pruned if i not in finished]


def _lanes_of(run: _Run, indices: Sequence[int]) -> list[Lane]:
    """The lanes of these samples (only ``n=1`` lanes are ever pruned)."""
    wanted = set(indices)
    return [lane for lane in run.lanes if wanted & set(lane.indices)]


async def _judge(
    run: _Run, finished: list[int], normalizer: AnswerNormalizer, executor: Executor | None
) -> None:
    """Extract and judge the finished samples' answers, and give the unpruned ones their vote."""
    if not finished:
        return
    samples = [run.samples[i] for i in finished]
    any_cut = run.plan.samples == 1 or run.plan.truncated_votes == "any"
    answers, formulas = await _off_loop(executor, _extract, samples, normalizer, any_cut)
    await normalizer.judge(formulas)
    for sample, answer in zip(samples, answers, strict=True):
        judged = None if answer is None else normalizer.judged(answer)
        run.judged[sample.index] = (answer, judged)
        if sample.finish_reason != "abort":
            run.referee.vote(sample.index, None if judged is None else judged.canonical.key)


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


def _report(run: _Run, settled: list[int], hook: Callable[[RoundProgress], None] | None) -> None:
    """One progress report per settled sample (voted or pruned), with the tally after it."""
    if hook is None:
        return
    voters = run.referee.voters
    for index in settled:
        run.reports += 1
        run.settled.add(index)
        counted = voters[: voters.index(index) + 1] if index in voters else voters
        keys = [run.judged[i][1] for i in counted]
        tallies = Counter(j.canonical.display for j in keys if j is not None)
        hook(
            RoundProgress(
                round=run.reports,
                samples_drawn=len(run.settled),
                samples_cap=len(run.samples),
                tallies=dict(tallies.most_common()),
                unparsed=sum(1 for j in keys if j is None),
                sample=index,
                pruned=run.stopped.get(index) == "pruned",
                running=len(run.referee.running),
            )
        )


def _over_budget(run: _Run) -> bool:
    limit = run.plan.max_total_tokens
    return limit is not None and run.spent >= limit


def _close(run: _Run) -> list[Ballot]:
    """Mark what never finished as aborted (and why); the ballots of the voters."""
    why: SampleStop = "budget" if run.budget_reason is not None else "consensus"
    for index in sorted(run.referee.running):
        run.samples[index].finish_reason = "abort"
        run.stopped[index] = why
    ballots = []
    for index in run.referee.voters:
        _, judged = run.judged[index]
        ballots.append(
            Ballot(
                index, None if judged is None else judged.canonical, run.samples[index].mean_logprob
            )
        )
    return ballots


def _record(run: _Run, index: int, voters: set[int]) -> SampleRecord:
    """The sample's record: its answer, how it was judged, its confidence, how it ended."""
    sample, spec = run.samples[index], run.plan.confidence
    answer, judged = run.judged.get(index, (None, None))
    canonical = None if judged is None else judged.canonical.display
    lane = next(lane for lane in run.lanes if index in lane.indices)
    seed = None if lane.spec.seed is None else lane.spec.seed + index - lane.first
    logprobs = (sample.logprobs or []) if spec.top_k > 0 else []
    keep = spec.keep_tokens and spec.top_k > 0
    return SampleRecord(
        index=index,
        text=sample.text,
        answer=answer,
        canonical=canonical,
        finish_reason=sample.finish_reason,
        seed=seed,
        mean_logprob=sample.mean_logprob,
        token_count=sample.token_count,
        voted=index in voters,
        judge=None if judged is None else judged.verdict,
        confidence=_confidence(run, index),
        token_confidences=tuple(round(token_confidence(t), 4) for t in logprobs) if keep else None,
        stopped=run.stopped.get(index),
        greedy=run.plan.greedy_vote and index == run.plan.samples,
    )


def _confidence(run: _Run, index: int) -> Confidence | None:
    """DeepConf's trace confidence; it needs the top-k alternatives: None without them."""
    spec = run.plan.confidence
    logprobs = (run.samples[index].logprobs or []) if spec.top_k > 0 else []
    return trace_confidence(logprobs, spec.window, spec.tail)


def _confidences(run: _Run) -> dict[int, Confidence | None]:
    """Every voter's trace confidence, for the plan's vote weighting."""
    return {i: _confidence(run, i) for i in run.referee.voters}


async def _off_loop(
    executor: Executor | None, fn: Callable[..., _T], *args: object, **kwargs: object
) -> _T:
    """Run CPU-bound parsing/voting in a worker thread (default: the loop's) so the loop serves."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def _result(
    run: _Run, outcome: VoteResult, engine_requests: int, voting: set[int]
) -> ConsistencyResult:
    voters = set(run.referee.voters)
    records = tuple(_record(run, i, voting) for i in sorted(run.samples))
    winner = None if outcome.abstained else outcome.winner_index
    chosen = None if winner is None else run.samples[winner]
    text = None if chosen is None else chosen.text
    gate = run.referee.gate
    return ConsistencyResult(
        answer=None if outcome.abstained else outcome.winner,
        text=text,
        winner_index=winner,
        agreement=outcome.agreement,
        votes=outcome.votes,
        samples=records,
        samples_used=len(voters),
        parsed=outcome.parsed,
        unparsed=outcome.unparsed,
        abstained=outcome.abstained,
        abstain_code=outcome.abstain_code,
        abstain_reason=outcome.abstain_reason,
        stopped_early=run.stop_reason is not None,
        budget_exhausted=run.budget_reason is not None,
        budget_reason=run.budget_reason,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.spent,
        engine_requests=engine_requests,
        stop_reason=run.stop_reason,
        threshold=None if gate is None else gate.threshold,
        warmup=() if gate is None else tuple(gate.warmup),
        truncated=chosen is not None and chosen.finish_reason == "length",
    )
