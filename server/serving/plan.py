"""One plan per request, made before the first byte of the response is sent.

``plan(body, mode, settings)`` turns any wire body (chat, completions, precise) into a ``Plan``:
the prompt(s), the engine sampling spec, precise mode's consistency plan, and how to render the
response. Every cap is checked here, so a request past one gets a 400 whether or not it asked
to stream; nothing after the plan refuses a request for its fields.

Modes come from the model name: ``<name>`` honours the request's own parameters with OpenAI's
defaults (like vLLM), ``<name>:creative`` fills unset ones with creative defaults, and
``<name>:precise`` votes over samples. The creative and precise routes fix their mode.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from decoding.confidence import ConfidenceSpec
from decoding.consistency import ConsistencyPlan
from decoding.creative import CREATIVE_DEFAULTS
from decoding.engine import ChatPrompt, Prompt, SamplingSpec, TextPrompt
from decoding.instruction import with_answer_instruction
from decoding.pruning import PruneSpec
from decoding.stopping import BetaStopping, ConsensusStopping, StoppingRule, WindowStopping
from decoding.verification import VerifySpec
from server.errors import InvalidRequest, ModelNotFound
from server.runtime.settings import Settings
from server.serving.verify_plan import refuse_broken_rules, verify_spec
from server.wire.chat import ChatCompletionRequest, ChatMessage, ChatRequest, CreativeRequest
from server.wire.common import SamplingFields
from server.wire.completions import COMPLETIONS_DEFAULT_MAX_TOKENS, CompletionRequest
from server.wire.precise import (
    DEFAULT_PRECISE_TEMPERATURE,
    DEFAULT_PRUNE_TOP_K,
    PreciseOptions,
    PreciseRequest,
)

Mode = Literal["plain", "creative", "precise"]
Surface = Literal["chat", "completions", "precise"]
RequestBody = ChatCompletionRequest | CreativeRequest | CompletionRequest | PreciseRequest
MODE_SUFFIXES: tuple[Mode, ...] = ("creative", "precise")
# Precise options an OpenAI request carries as extra fields: only a precise request reads them.
PRECISE_OPTIONS = tuple(sorted(set(PreciseOptions.model_fields) - set(SamplingFields.model_fields)))
SEED_RANGE = (0, 2**31 - 1)  # drawn precise seeds; sample i gets seed + i


@dataclass(frozen=True)
class Plan:
    """Everything decided about a request before its response starts."""

    surface: Surface  # which OpenAI (or Quorum) shape the response takes
    mode: Mode
    model: str  # the model name echoed in the response
    prompts: tuple[Prompt, ...]  # one, or a legacy completions batch
    spec: SamplingSpec
    consistency: ConsistencyPlan | None = None  # precise mode only
    stream: bool = False
    include_usage: bool = False
    echo: bool = False
    verify: VerifySpec | None = None  # precise mode: check candidates before they vote

    @property
    def prompt(self) -> Prompt:
        """The (first) prompt."""
        return self.prompts[0]


def resolve_mode(requested: str | None, served_name: str, default: Mode = "plain") -> Mode:
    """The mode a model name asks for; 404 for a model this server does not serve."""
    if requested is None:
        return default
    name, sep, suffix = requested.partition(":")
    if name == served_name and not sep:
        return default
    for mode in MODE_SUFFIXES:
        if name == served_name and suffix == mode:
            return mode
    raise ModelNotFound(
        f"The model '{requested[:200]}' does not exist. This server serves '{served_name}', "
        f"'{served_name}:creative' and '{served_name}:precise'.",
        param="model",
    )


def route_mode(route: Literal["creative", "precise"], requested: str | None, served: str) -> Mode:
    """The mode of a mode route (``/v1/creative``, ``/v1/precise``), which serves only its own."""
    mode = resolve_mode(requested, served, default=route)
    if mode != route:
        raise InvalidRequest(f"/v1/{route} serves only the {route} mode", param="model")
    return mode


@dataclass(frozen=True)
class SamplingRequest:
    """The sampling fields of any request body, as the client sent them (the shared ones are
    named as in ``server.wire.common.SamplingFields``)."""

    frequency_penalty: float | None
    presence_penalty: float | None
    seed: int | None
    stop: str | list[str] | None
    temperature: float | None
    top_p: float | None
    n: int | None
    max_tokens: int | None
    logprobs: int | None
    max_tokens_param: str = "max_tokens"


def sampling_request(body: RequestBody) -> SamplingRequest:
    """The one constructor from a wire body to its sampling fields."""
    max_tokens, param, logprobs = body.max_tokens, "max_tokens", None
    n = None if isinstance(body, PreciseRequest) else body.n
    if isinstance(body, ChatRequest):
        if body.max_completion_tokens is not None:
            max_tokens, param = body.max_completion_tokens, "max_completion_tokens"
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
    elif isinstance(body, CompletionRequest):
        logprobs = body.logprobs
    shared = {name: getattr(body, name) for name in SamplingFields.model_fields}
    return SamplingRequest(
        **shared, n=n, max_tokens=max_tokens, logprobs=logprobs, max_tokens_param=param
    )


def check_max_tokens(value: int, param: str, settings: Settings) -> int:
    """``value``, or a 400 past the token cap."""
    if value > settings.tokens_cap:
        raise InvalidRequest(
            f"{param} must be at most {settings.tokens_cap}, got {value}", param=param
        )
    return value


def check_temperature(temperature: float | None, settings: Settings) -> None:
    """400 past ``--max-temperature``, whether or not the mode then uses the value."""
    if temperature is not None and temperature > settings.max_temperature:
        raise InvalidRequest(
            f"temperature must be at most {settings.max_temperature}, got {temperature}",
            param="temperature",
        )


def sampling_spec(
    req: SamplingRequest, mode: Mode, settings: Settings, *, default_max_tokens: int
) -> SamplingSpec:
    """Map a request to engine sampling parameters, enforcing the server's caps (the stop
    sequences' bounds are the wire model's; an unset ``max_tokens`` gets the default, kept
    within the cap, so a request that sets nothing is never refused for it)."""
    n = req.n if req.n is not None else 1
    if n > settings.max_n:
        raise InvalidRequest(f"n must be at most {settings.max_n}, got {n}", param="n")
    if req.max_tokens is None:
        max_tokens = min(default_max_tokens, settings.tokens_cap)
    else:
        max_tokens = check_max_tokens(req.max_tokens, req.max_tokens_param, settings)
    check_temperature(req.temperature, settings)
    if req.top_p is not None and req.top_p > settings.max_top_p:
        raise InvalidRequest(
            f"top_p must be at most {settings.max_top_p}, got {req.top_p}", param="top_p"
        )
    temperature, top_p, presence = req.temperature, req.top_p, req.presence_penalty
    if mode == "creative":
        temperature = CREATIVE_DEFAULTS.temperature if temperature is None else temperature
        top_p = CREATIVE_DEFAULTS.top_p if top_p is None else top_p
        presence = CREATIVE_DEFAULTS.presence_penalty if presence is None else presence
    return SamplingSpec(
        n=n,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        max_tokens=max_tokens,
        seed=req.seed,
        stop=(req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ()),
        presence_penalty=presence or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logprobs=req.logprobs,
    )


def chat_prompt(messages: list[ChatMessage]) -> ChatPrompt:
    """The conversation as plain role/content messages for the chat template."""
    return ChatPrompt(messages=[{"role": m.role, "content": m.text()} for m in messages])


def plan(body: RequestBody, mode: Mode, settings: Settings) -> Plan:
    """The whole plan of a request, every cap checked, before anything is sent."""
    if isinstance(body, ChatRequest) and body.max_tokens is not None:
        check_max_tokens(body.max_tokens, "max_tokens", settings)  # even when unused
    if mode == "precise":
        return _precise_plan(body, settings)
    if isinstance(body, PreciseRequest):
        raise InvalidRequest("/v1/precise serves only the precise mode", param="model")
    _refuse_precise_options(body)
    sampling = sampling_request(body)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    if isinstance(body, ChatRequest):
        spec = sampling_spec(
            sampling, mode, settings, default_max_tokens=settings.default_max_tokens
        )
        return Plan(
            "chat",
            mode,
            body.model or settings.model_name,
            (chat_prompt(body.messages),),
            spec,
            stream=bool(body.stream),
            include_usage=include_usage,
        )
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    spec = sampling_spec(
        sampling, mode, settings, default_max_tokens=COMPLETIONS_DEFAULT_MAX_TOKENS
    )
    if len(prompts) * spec.n > settings.max_n:
        raise InvalidRequest(
            f"prompts x n must be at most {settings.max_n}, got {len(prompts) * spec.n}",
            param="prompt",
        )
    return Plan(
        "completions",
        mode,
        body.model,
        tuple(TextPrompt(p) for p in prompts),
        spec,
        stream=bool(body.stream),
        include_usage=include_usage,
        echo=bool(body.echo),
    )


def _precise_plan(body: RequestBody, settings: Settings) -> Plan:
    """Precise mode on any surface: its options, one prompt, one answer."""
    model = body.model or settings.model_name
    if isinstance(body, PreciseRequest):
        options: PreciseOptions = body
        messages, text = body.messages, body.prompt
        surface: Surface = "precise"
    else:
        if body.n not in (None, 1):
            raise InvalidRequest("precise mode returns one answer: use samples, not n", param="n")
        options = options_from_extras(body)
        if isinstance(body, ChatRequest):
            messages, text, surface = body.messages, None, "chat"
        else:
            texts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
            if len(texts) != 1:
                raise InvalidRequest("precise mode takes one prompt", param="prompt")
            if body.stream:
                raise InvalidRequest(
                    "stream precise completions through /v1/precise", param="stream"
                )
            messages, text, surface = None, texts[0], "completions"
    prompt: Prompt = chat_prompt(messages) if messages is not None else TextPrompt(text or "")
    if options.answer_instruction:
        prompt = with_answer_instruction(prompt, options.answer_format)
    refuse_broken_rules(options)
    consistency = consistency_plan(options, settings)
    return Plan(
        surface,
        "precise",
        model,
        (prompt,),
        precise_spec(options, sampling_request(body), settings),
        consistency,
        stream=bool(body.stream),
        include_usage=_include_usage(body),
        verify=verify_spec(options, settings),
    )


def _include_usage(body: RequestBody) -> bool:
    options = getattr(body, "stream_options", None)
    return bool(options and options.include_usage)


def _refuse_precise_options(body: BaseModel) -> None:
    """A precise option on a plain or creative request would be ignored: say so instead."""
    for name in PRECISE_OPTIONS:
        if name in (body.model_extra or {}):
            raise InvalidRequest(
                f"{name} is a precise-mode option: ask for the model '<name>:precise' "
                "or use /v1/precise",
                param=name,
            )


def options_from_extras(body: BaseModel) -> PreciseOptions:
    """Precise options sent as extra body fields of an OpenAI request (``extra_body``), and
    the OpenAI fields that are also precise options (``temperature``; a chat's
    ``top_logprobs``); any other extra field is refused, so a misspelt option is not silently
    dropped."""
    options: dict[str, Any] = dict(body.model_extra or {})
    for name in PreciseOptions.model_fields.keys() & type(body).model_fields.keys():
        if (value := getattr(body, name)) is not None:
            options[name] = value
    try:
        return PreciseOptions.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        message = str(first.get("msg", "invalid"))
        if first.get("type") == "extra_forbidden":
            message = "not a precise option (they are: " + ", ".join(PRECISE_OPTIONS) + ")"
        raise InvalidRequest(f"{param}: {message}", param=param) from exc


def stopping_rule(name: str) -> StoppingRule:
    """The named adaptive stopping rule with its documented defaults."""
    if name == "esc":
        return WindowStopping()
    return ConsensusStopping() if name == "consensus" else BetaStopping()


def prune_spec(options: PreciseOptions) -> PruneSpec | None:
    """In-flight pruning, when asked for (one sample has nothing to prune against)."""
    if not options.prune or options.samples == 1:
        return None
    return PruneSpec(warmup=options.prune_warmup, percentile=options.prune_percentile)


def consistency_plan(options: PreciseOptions, settings: Settings) -> ConsistencyPlan:
    """The decoding plan, with ``samples`` capped by the server."""
    if options.samples > settings.max_samples:
        raise InvalidRequest(
            f"samples must be at most {settings.max_samples}, got {options.samples}",
            param="samples",
        )
    prune = prune_spec(options)
    top_k = options.top_logprobs
    if prune is not None and "top_logprobs" not in options.model_fields_set:
        top_k = DEFAULT_PRUNE_TOP_K  # pruning needs the top-k alternatives of each token
    return ConsistencyPlan(
        samples=options.samples,
        answer_format=options.answer_format,
        min_agreement=options.min_agreement,
        adaptive=options.adaptive,
        stopping=stopping_rule(options.stopping_rule),
        max_total_tokens=options.max_total_tokens,
        deadline_ms=options.deadline_ms,
        confidence=ConfidenceSpec(
            top_k=top_k,
            window=options.confidence_window,
            tail=options.confidence_tail,
            keep_tokens=options.token_confidences,
        ),
        prune=prune,
        greedy_vote=options.greedy_vote,
        weighting=options.vote_weighting,
        keep_top=options.keep_top,
        truncated_votes=options.truncated_votes,
    )


def precise_spec(
    options: PreciseOptions, sampling: SamplingRequest, settings: Settings
) -> SamplingSpec:
    """Engine sampling for precise mode: greedy (temperature 0) for one sample, else the vote
    temperature; a seed always set, drawn when the client gave none, so the receipt replays."""
    check_temperature(options.temperature, settings)  # the schema states the cap for any samples
    temperature = options.temperature
    if options.samples == 1:
        temperature = 0.0  # greedy whatever the client sent: the one place the server decides
    elif temperature is None:
        # The documented default, kept within the server's temperature cap.
        temperature = min(DEFAULT_PRECISE_TEMPERATURE, settings.max_temperature)
    seed = sampling.seed if sampling.seed is not None else secrets.randbelow(SEED_RANGE[1])
    request = replace(sampling, n=1, temperature=temperature, seed=seed, logprobs=None)
    return sampling_spec(
        request, "precise", settings, default_max_tokens=settings.default_max_tokens
    )
