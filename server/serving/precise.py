"""Precise mode on any engine and any surface: plan -> self-consistency -> evidence -> shape.

Streaming is honest: the vote needs every sample, so a stream carries progress events while
samples are drawn and the winning text once the vote is decided, never a fake token stream.
On ``/v1/precise`` the events are ``precise.progress`` objects then the ``precise.answer``; on a
``:precise`` chat they ride on choice-less chunks (which OpenAI clients skip), then the text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any

from decoding import (
    ConsistencyPlan,
    ConsistencyResult,
    Engine,
    Judge,
    ProgressHook,
    RoundProgress,
    SampleRecord,
    engine_spec,
    self_consistency,
)
from decoding.cancelling import cancel_and_wait
from decoding.verification import Verifier
from server import __version__
from server.runtime.metrics import observe_precise
from server.serving import sse
from server.serving.plan import Plan
from server.serving.shapes import Chunks, new_id, whole
from server.serving.verified import annotate, verify
from server.wire.chat import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    ChunkDelta,
    ResponseMessage,
)
from server.wire.common import Usage
from server.wire.completions import Completion, CompletionChoice
from server.wire.precise import (
    Evidence,
    PreciseAnswer,
    PruningOut,
    Receipt,
    SampleOut,
    VoteOut,
)

Outcome = tuple[ConsistencyResult, Evidence]
Rendered = PreciseAnswer | ChatCompletion | Completion


async def run(
    engine: Engine,
    plan: Plan,
    judge: Judge | None = None,
    on_round: ProgressHook | None = None,
    verifier: Verifier | None = None,
) -> Outcome:
    """Sample, extract, judge, (verify,) vote; the raw result and its wire evidence."""
    consistency = _consistency(plan)
    result = await self_consistency(
        engine, plan.prompt, plan.spec, consistency, judge=judge, on_round=on_round
    )
    checked = None
    if plan.verify is not None and verifier is not None:
        checked = await verify(result, plan, verifier)
        result = checked.result
    verdicts = [sample.judge for sample in result.samples]
    observe_precise(result.samples_used, result.agreement, result.abstained, verdicts)
    proof = evidence(result, plan, engine)
    return result, proof if checked is None else annotate(proof, checked, plan)


def _consistency(plan: Plan) -> ConsistencyPlan:
    if plan.consistency is None:
        raise ValueError("not a precise plan")
    return plan.consistency


# Fields the wire evidence and a sample's record share with decoding's results, by name.
_RESULT_FIELDS = (
    "answer",
    "text",
    "agreement",
    "samples_used",
    "unparsed",
    "abstained",
    "abstain_reason",
    "stopped_early",
    "budget_exhausted",
    "budget_reason",
    "truncated",
    "stop_reason",
)
_SAMPLE_FIELDS = (
    "index",
    "text",
    "finish_reason",
    "seed",
    "mean_logprob",
    "voted",
    "judge",
    "stopped",
    "greedy",
)


def _sample_out(record: SampleRecord) -> SampleOut:
    """One sample on the wire: its canonical answer, and its tokens under OpenAI's short name."""
    same = {name: getattr(record, name) for name in _SAMPLE_FIELDS}
    confidence = None if record.confidence is None else asdict(record.confidence)
    scores = None if record.token_confidences is None else list(record.token_confidences)
    return SampleOut(
        **same,
        answer=record.canonical,
        tokens=record.token_count,
        confidence=confidence,
        token_confidences=scores,
    )


def evidence(result: ConsistencyResult, plan: Plan, engine: Engine) -> Evidence:
    """The vote, every sample, and a receipt that replays the request."""
    info, consistency = engine.info, _consistency(plan)
    sampling = asdict(engine_spec(plan.spec, consistency))
    sampling.pop("n")
    plan_fields = asdict(consistency)
    stopping = plan_fields.pop("stopping")
    plan_fields["stopping_rule"] = {"name": type(consistency.stopping).__name__, **stopping}
    receipt = Receipt(
        model=info.model,
        engine=info.engine,
        engine_version=info.version,
        determinism=info.determinism,
        quorum_version=__version__,
        sampling=sampling,
        plan=plan_fields,
        seeds=[s.seed for s in result.samples],
        finished=[s.index for s in result.samples if s.finish_reason != "abort"],
        cut=[s.index for s in result.samples if s.finish_reason == "abort"],
    )
    return Evidence(
        **{name: getattr(result, name) for name in _RESULT_FIELDS},
        votes=[
            VoteOut(answer=v.answer, count=v.count, samples=list(v.indices)) for v in result.votes
        ],
        samples=[_sample_out(s) for s in result.samples],
        pruning=None
        if consistency.prune is None
        else PruningOut(threshold=result.threshold, warmup=list(result.warmup)),
        receipt=receipt,
    )


def _usage(result: ConsistencyResult) -> Usage:
    return Usage.of(result.prompt_tokens, result.completion_tokens)


def render(outcome: Outcome, plan: Plan, engine: Engine) -> Rendered:
    """The whole response in the shape of the plan's surface."""
    result, proof = outcome
    if plan.surface == "precise":
        return PreciseAnswer(
            **proof.model_dump(),
            id=new_id("precise"),
            created=int(time.time()),
            model=plan.model,
            usage=_usage(result),
        )
    if plan.surface == "chat":
        choice = ChatChoice(
            index=0, message=ResponseMessage(content=result.text), finish_reason="stop"
        )
        return whole(
            ChatCompletion,
            [choice],
            _usage(result),
            plan.model,
            engine.info,
            quorum=proof.model_dump(),
        )
    text_choice = CompletionChoice(index=0, text=result.text or "", finish_reason="stop")
    return whole(
        Completion,
        [text_choice],
        _usage(result),
        plan.model,
        engine.info,
        quorum=proof.model_dump(),
    )


async def complete(
    engine: Engine, plan: Plan, judge: Judge | None = None, verifier: Verifier | None = None
) -> Rendered:
    """A precise request answered whole."""
    return render(await run(engine, plan, judge, verifier=verifier), plan, engine)


def stream(
    engine: Engine, plan: Plan, judge: Judge | None = None, verifier: Verifier | None = None
) -> AsyncIterator[str]:
    """A precise request answered as SSE: progress while sampling, then the answer."""

    def start(hook: ProgressHook) -> Awaitable[Outcome]:
        return run(engine, plan, judge, hook, verifier)

    items = with_progress(start, _consistency(plan).samples)
    if plan.surface == "chat":
        return _chat_events(items, plan, Chunks(ChatCompletionChunk, plan.model, engine.info))
    return _precise_events(items, plan, engine)


async def _precise_events(
    items: AsyncIterator[dict[str, Any] | Outcome], plan: Plan, engine: Engine
) -> AsyncIterator[str]:
    async for item in items:
        yield sse.event(item if isinstance(item, dict) else render(item, plan, engine))


async def _chat_events(
    items: AsyncIterator[dict[str, Any] | Outcome], plan: Plan, out: Chunks[ChatCompletionChunk]
) -> AsyncIterator[str]:
    async for item in items:
        if isinstance(item, dict):
            yield out.event([], quorum=item)  # progress on a choice-less chunk
            continue
        result, proof = item
        delta = ChunkDelta(role="assistant", content=result.text)
        yield out.event([ChunkChoice(index=0, delta=delta)])
        done = ChunkChoice(index=0, delta=ChunkDelta(), finish_reason="stop")
        yield out.event([done], quorum=proof.model_dump())
        if plan.include_usage:
            yield out.event([], usage=_usage(result))


def progress_event(progress: RoundProgress) -> dict[str, Any]:
    """A progress event: the running tally after an engine round."""
    return {"object": "precise.progress", "stage": "voting", **asdict(progress)}


async def with_progress(
    start: Callable[[ProgressHook], Awaitable[Outcome]], samples: int
) -> AsyncIterator[dict[str, Any] | Outcome]:
    """Progress events while samples are drawn, then the outcome; closing the stream cancels
    the work (and with it every engine request it started)."""
    rounds: asyncio.Queue[RoundProgress] = asyncio.Queue()
    task = asyncio.ensure_future(start(rounds.put_nowait))
    next_round: asyncio.Future[RoundProgress] | None = None
    try:
        yield {"object": "precise.progress", "stage": "sampling", "samples": samples}
        while not task.done():
            next_round = asyncio.ensure_future(rounds.get())
            await asyncio.wait({task, next_round}, return_when=asyncio.FIRST_COMPLETED)
            if next_round.done():
                yield progress_event(next_round.result())
            else:
                next_round.cancel()
        while not rounds.empty():
            yield progress_event(rounds.get_nowait())
        yield task.result()
    finally:
        if next_round is not None:
            next_round.cancel()
        # Cancelled once, and its engine requests closed to the end, however often this
        # stream is cancelled meanwhile (Starlette's cancel scope does so on every loop turn).
        await cancel_and_wait([task])
