"""From a wire request to a decoding plan: which mode, which sampling parameters, within caps.

Modes come from the model name: ``<name>`` honours the request's own parameters with OpenAI's
defaults (like vLLM), ``<name>:creative`` fills unset ones with creative defaults, and
``<name>:precise`` votes over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from decoding.creative import CREATIVE_DEFAULTS
from decoding.engine import SamplingSpec
from server.errors import InvalidRequest, ModelNotFound
from server.settings import Settings

Mode = Literal["plain", "creative", "precise"]
MODE_SUFFIXES: tuple[Mode, ...] = ("creative", "precise")
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 256


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


@dataclass(frozen=True)
class SamplingRequest:
    """The sampling fields common to the chat and completions bodies, as the client sent them."""

    n: int | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    seed: int | None
    stop: str | list[str] | None
    presence_penalty: float | None
    frequency_penalty: float | None
    logprobs: int | None
    max_tokens_param: str = "max_tokens"


def _stop_sequences(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(
            f"stop may hold at most {MAX_STOP_SEQUENCES} sequences, got {len(stops)}",
            param="stop",
        )
    for item in stops:
        if not item or len(item) > MAX_STOP_CHARS:
            raise InvalidRequest(
                f"each stop sequence must have 1 to {MAX_STOP_CHARS} characters", param="stop"
            )
    return tuple(stops)


def sampling_spec(
    req: SamplingRequest, mode: Mode, settings: Settings, *, default_max_tokens: int
) -> SamplingSpec:
    """Map a request to engine sampling parameters, enforcing the server's caps."""
    n = req.n if req.n is not None else 1
    if n > settings.max_n:
        raise InvalidRequest(f"n must be at most {settings.max_n}, got {n}", param="n")
    max_tokens = req.max_tokens if req.max_tokens is not None else default_max_tokens
    if max_tokens > settings.tokens_cap:
        raise InvalidRequest(
            f"{req.max_tokens_param} must be at most {settings.tokens_cap}, got {max_tokens}",
            param=req.max_tokens_param,
        )
    if req.temperature is not None and req.temperature > settings.max_temperature:
        raise InvalidRequest(
            f"temperature must be at most {settings.max_temperature}, got {req.temperature}",
            param="temperature",
        )
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
        stop=_stop_sequences(req.stop),
        presence_penalty=presence or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logprobs=req.logprobs,
    )
