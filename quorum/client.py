"""A thin helper for precise mode over the official ``openai`` client, which does the transport.

It adds only what that client cannot know: the precise options, checked against the server's
own wire model and sent in ``extra_body``; the vote's evidence, read as typed objects from the
``quorum`` extra field of a ``<name>:precise`` completion (or from a ``/v1/precise`` answer);
and the request fields that replay a receipt.

    from openai import OpenAI
    from quorum.client import evidence, precise_chat

    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    reply = precise_chat(client, "SmolLM2-135M-Instruct", [{"role": "user", "content": "2+3?"}],
                         samples=5, seed=1)
    vote = evidence(reply)
    print(vote.answer, vote.agreement, [(v.answer, v.count) for v in vote.votes])

The typed objects are the server's wire models (``server.wire.precise``), so client and server
cannot drift apart; they ignore fields a newer server adds. The ``openai`` package is needed
only to call a server (``pip install 'quorum[client]'``), not to import this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from server.wire.precise import (
    ConfidenceOut,
    Evidence,
    PreciseRequest,
    Receipt,
    SampleOut,
    VoteOut,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI
    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

__all__ = [
    "ConfidenceOut",
    "Evidence",
    "NoEvidence",
    "Receipt",
    "SampleOut",
    "VoteOut",
    "aprecise_chat",
    "evidence",
    "precise_chat",
    "precise_fields",
    "precise_model",
    "replay_request",
]

EXTRA_FIELD = "quorum"
# The receipt names the stopping rule by its class; requests name it by its short name.
STOPPING_RULES = {"BetaStopping": "beta", "WindowStopping": "esc"}
# Fields the call itself sets: passing them as options would change what the call means.
_RESERVED = frozenset({"model", "messages", "prompt", "stream"})


class NoEvidence(ValueError):
    """The response carries no vote: not a precise-mode response, or a progress chunk."""


def precise_model(model: str) -> str:
    """The model name that asks for precise mode (``<name>:precise``)."""
    return model if model.endswith(":precise") else f"{model}:precise"


def precise_fields(**options: Any) -> dict[str, Any]:
    """Precise options (``samples``, ``seed``, ``temperature``, ``answer_format``, ...) for
    ``extra_body``, checked by the server's own request model first, so a misspelt or
    out-of-range option fails here rather than as a 400 (the server's caps still apply)."""
    reserved = _RESERVED & set(options)
    if reserved:
        raise TypeError(f"set {sorted(reserved)} on the call, not as precise options")
    try:
        PreciseRequest.model_validate({"prompt": "-", **options})
    except ValidationError as exc:
        raise ValueError(f"invalid precise options: {exc}") from exc
    return dict(options)


def precise_chat(
    client: OpenAI,
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    **options: Any,
) -> ChatCompletion:
    """A ``<model>:precise`` chat completion: the winning text as the message, the evidence in
    ``evidence(reply)``."""
    return client.chat.completions.create(
        model=precise_model(model), messages=messages, extra_body=precise_fields(**options)
    )


async def aprecise_chat(
    client: AsyncOpenAI,
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    **options: Any,
) -> ChatCompletion:
    """``precise_chat`` for the async client."""
    return await client.chat.completions.create(
        model=precise_model(model), messages=messages, extra_body=precise_fields(**options)
    )


def evidence(response: BaseModel | Mapping[str, Any]) -> Evidence:
    """The vote and its evidence from a ``:precise`` chat or text completion (or the last chunk
    of a streamed one), or from a ``/v1/precise`` answer parsed as JSON."""
    if isinstance(response, BaseModel):
        data: Any = (response.model_extra or {}).get(EXTRA_FIELD)
    elif EXTRA_FIELD in response:
        data = response[EXTRA_FIELD]
    else:
        data = response
    if not isinstance(data, Mapping) or "receipt" not in data:
        raise NoEvidence("this response carries no vote (is the model name '<name>:precise'?)")
    return Evidence.model_validate(data)


def replay_request(receipt: Receipt | Mapping[str, Any]) -> dict[str, Any]:
    """The precise request fields that replay a receipt (everything but the prompt, which the
    receipt does not keep): for a ``/v1/precise`` body or ``precise_chat(**fields)``."""
    r = receipt if isinstance(receipt, Receipt) else Receipt.model_validate(receipt)
    sampling, plan = r.sampling, r.plan
    confidence = plan.get("confidence") or {}
    fields: dict[str, Any] = {
        "samples": plan["samples"],
        "seed": sampling["seed"],
        "temperature": sampling["temperature"],
        "top_p": sampling["top_p"],
        "max_tokens": sampling["max_tokens"],
        "presence_penalty": sampling["presence_penalty"],
        "frequency_penalty": sampling["frequency_penalty"],
        "answer_format": plan["answer_format"],
        "min_agreement": plan["min_agreement"],
        "adaptive": plan["adaptive"],
    }
    if sampling.get("stop"):
        fields["stop"] = list(sampling["stop"])
    if plan.get("max_total_tokens") is not None:
        fields["max_total_tokens"] = plan["max_total_tokens"]
    if plan.get("deadline_ms") is not None:
        fields["deadline_ms"] = -int(-plan["deadline_ms"] // 1)  # whole ms, rounded up
    rule = STOPPING_RULES.get((plan.get("stopping_rule") or {}).get("name", ""))
    if rule is not None:
        fields["stopping_rule"] = rule
    optional = {
        "top_k": "top_logprobs",
        "window": "confidence_window",
        "tail": "confidence_tail",
        "keep_tokens": "token_confidences",
    }
    for name, field in optional.items():
        if confidence.get(name):
            fields[field] = confidence[name]
    return fields
