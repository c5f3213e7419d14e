"""Precise mode on any engine: wire options -> decoding plan -> self-consistency -> evidence."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import asdict

from decoding.engine import Engine, Prompt, SamplingSpec
from decoding.self_consistency import (
    ConsistencyPlan,
    ConsistencyResult,
    ProgressHook,
    self_consistency,
)
from decoding.stopping import BetaStopping, StoppingRule, WindowStopping
from server import __version__
from server.errors import InvalidRequest
from server.metrics import observe_precise
from server.plan import SamplingRequest, sampling_spec
from server.settings import Settings
from server.wire.common import Usage
from server.wire.precise import (
    DEFAULT_PRECISE_TEMPERATURE,
    Evidence,
    PreciseAnswer,
    PreciseOptions,
    Receipt,
    SampleOut,
    VoteOut,
)


def stopping_rule(name: str) -> StoppingRule:
    """The named adaptive stopping rule with its documented defaults."""
    return WindowStopping() if name == "esc" else BetaStopping()


def consistency_plan(options: PreciseOptions, settings: Settings) -> ConsistencyPlan:
    """The decoding plan, with ``samples`` capped by the server."""
    if options.samples > settings.max_samples:
        raise InvalidRequest(
            f"samples must be at most {settings.max_samples}, got {options.samples}",
            param="samples",
        )
    return ConsistencyPlan(
        samples=options.samples,
        answer_format=options.answer_format,
        min_agreement=options.min_agreement,
        adaptive=options.adaptive,
        stopping=stopping_rule(options.stopping_rule),
        max_total_tokens=options.max_total_tokens,
        deadline_ms=options.deadline_ms,
    )


def precise_spec(
    options: PreciseOptions, sampling: SamplingRequest, settings: Settings
) -> SamplingSpec:
    """Engine sampling for precise mode: greedy for one sample, else the vote temperature;
    a seed is always set (drawn when the client gave none) so the receipt can replay it."""
    greedy = options.samples == 1
    temperature = options.temperature
    if temperature is None:
        # The documented default, kept within the server's temperature cap.
        default = min(DEFAULT_PRECISE_TEMPERATURE, settings.max_temperature)
        temperature = 0.0 if greedy else default
    seed = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31 - 1)
    request = SamplingRequest(
        n=1,
        temperature=0.0 if greedy else temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        seed=seed,
        stop=sampling.stop,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        logprobs=None,
        max_tokens_param=sampling.max_tokens_param,
    )
    return sampling_spec(
        request, "precise", settings, default_max_tokens=settings.default_max_tokens
    )


def evidence(
    result: ConsistencyResult, spec: SamplingSpec, plan: ConsistencyPlan, engine: Engine
) -> Evidence:
    """The vote, every sample, and a receipt that replays the request."""
    info = engine.info
    sampling = asdict(spec)
    sampling.pop("n")
    sampling["logprobs"] = 0  # self_consistency always asks for the sampled tokens' logprobs
    plan_fields = {
        "samples": plan.samples,
        "answer_format": plan.answer_format,
        "min_agreement": plan.min_agreement,
        "adaptive": plan.adaptive,
        "stopping_rule": {"name": type(plan.stopping).__name__, **vars(plan.stopping)},
        "max_total_tokens": plan.max_total_tokens,
        "deadline_ms": plan.deadline_ms,
    }
    return Evidence(
        answer=result.answer,
        text=result.text,
        agreement=result.agreement,
        votes=[
            VoteOut(answer=v.answer, count=v.count, samples=list(v.indices)) for v in result.votes
        ],
        samples=[
            SampleOut(
                index=s.index,
                text=s.text,
                answer=s.canonical,
                finish_reason=s.finish_reason,
                seed=s.seed,
                mean_logprob=s.mean_logprob,
                tokens=s.token_count,
                voted=s.voted,
            )
            for s in result.samples
        ],
        samples_used=result.samples_used,
        unparsed=result.unparsed,
        abstained=result.abstained,
        abstain_reason=result.abstain_reason,
        stopped_early=result.stopped_early,
        budget_exhausted=result.budget_exhausted,
        budget_reason=result.budget_reason,
        receipt=Receipt(
            model=info.model,
            engine=info.engine,
            engine_version=info.version,
            quorum_version=__version__,
            sampling=sampling,
            plan=plan_fields,
            seeds=[s.seed for s in result.samples],
        ),
    )


async def run_precise(
    engine: Engine,
    prompt: Prompt,
    options: PreciseOptions,
    sampling: SamplingRequest,
    settings: Settings,
    on_round: ProgressHook | None = None,
) -> tuple[ConsistencyResult, Evidence]:
    """Sample, extract, vote; return the raw result and its wire evidence."""
    plan = consistency_plan(options, settings)
    spec = precise_spec(options, sampling, settings)
    result = await self_consistency(engine, prompt, spec, plan, on_round=on_round)
    observe_precise(result.samples_used, result.agreement, result.abstained)
    return result, evidence(result, spec, plan, engine)


def precise_answer(result: ConsistencyResult, proof: Evidence, model: str) -> PreciseAnswer:
    """The ``precise.answer`` object of ``/v1/precise``."""
    return PreciseAnswer(
        **proof.model_dump(),
        id=f"precise-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
    )
