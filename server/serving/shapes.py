"""OpenAI's response shapes, each written once: ids, finish reasons, logprobs, usage, chunks.

Every route renders through these, so a chat completion, a completion and a precise answer
cannot disagree on how an id is minted or how an engine's finish reason reaches a client.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

from decoding.engine import EngineInfo
from decoding.samples import FinishReason, Sample, TokenLogprob
from server import __version__
from server.serving import sse
from server.wire.chat import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceLogprobs,
    ChunkChoice,
    ResponseMessage,
    TokenLogprobOut,
    TopLogprob,
)
from server.wire.common import Usage
from server.wire.completions import Completion, CompletionChoice, CompletionLogprobs
from server.wire.text import replace_lone_surrogates

IdKind = Literal["chatcmpl", "cmpl", "precise"]
_Whole = TypeVar("_Whole", ChatCompletion, Completion)
_Chunk = TypeVar("_Chunk", ChatCompletionChunk, Completion)
WireFinish = Literal["stop", "length"]


def new_id(kind: IdKind) -> str:
    """A fresh OpenAI-style id: ``chatcmpl-…``, ``cmpl-…`` or ``precise-…``."""
    return f"{kind}-{uuid.uuid4().hex}"


def finish_reason(reason: FinishReason | None) -> WireFinish | None:
    """OpenAI's finish reason for an engine's: ``length`` when cut by max_tokens, else ``stop``
    (an aborted sample never reaches a client as a finished choice)."""
    if reason is None:
        return None
    return "length" if reason == "length" else "stop"


def fingerprint(info: EngineInfo) -> str:
    """OpenAI's ``system_fingerprint``: which backend produced this, for replay checks."""
    return f"quorum-{__version__}/{info.engine}-{info.version}".replace(" ", "-")


def _token_bytes(token: str) -> list[int]:
    return list(replace_lone_surrogates(token).encode("utf-8"))


def chat_logprobs(tokens: Sequence[TokenLogprob] | None) -> ChoiceLogprobs | None:
    """OpenAI's chat logprobs shape for a run of tokens."""
    if tokens is None:
        return None
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=t.token,
                logprob=t.logprob,
                bytes=_token_bytes(t.token),
                top_logprobs=[
                    TopLogprob(token=tok, logprob=lp, bytes=_token_bytes(tok)) for tok, lp in t.top
                ],
            )
            for t in tokens
        ]
    )


def completion_logprobs(
    tokens: Sequence[TokenLogprob] | None, offset: int
) -> CompletionLogprobs | None:
    """The legacy completions logprobs shape; ``offset`` is where this text starts."""
    if tokens is None:
        return None
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t.token)
    return CompletionLogprobs(
        text_offset=offsets,
        token_logprobs=[t.logprob for t in tokens],
        tokens=[t.token for t in tokens],
        top_logprobs=[dict(t.top) for t in tokens],
    )


def chat_choice(sample: Sample, *, with_logprobs: bool) -> ChatChoice:
    """One finished chat choice from one sample."""
    return ChatChoice(
        index=sample.index,
        message=ResponseMessage(content=sample.text),
        logprobs=chat_logprobs(sample.logprobs) if with_logprobs else None,
        finish_reason=finish_reason(sample.finish_reason) or "stop",
    )


def whole(
    shape: type[_Whole],
    choices: Sequence[ChatChoice] | Sequence[CompletionChoice],
    usage: Usage,
    model: str,
    info: EngineInfo,
    **extra: Any,
) -> _Whole:
    """A whole ``chat.completion`` or ``text_completion``; ``extra`` carries Quorum's fenced
    top-level fields."""
    return shape(
        id=new_id("chatcmpl" if shape is ChatCompletion else "cmpl"),
        created=int(time.time()),
        model=model,
        choices=list(choices),
        usage=usage,
        system_fingerprint=fingerprint(info),
        **extra,
    )


class Chunks(Generic[_Chunk]):
    """The SSE events of one stream: one id, one creation time, one fingerprint."""

    def __init__(self, shape: type[_Chunk], model: str, info: EngineInfo) -> None:
        self._shape: type[_Chunk] = shape
        self._id = new_id("chatcmpl" if shape is ChatCompletionChunk else "cmpl")
        self._created, self._model, self._fingerprint = int(time.time()), model, fingerprint(info)

    def event(
        self, choices: Sequence[ChunkChoice] | Sequence[CompletionChoice], **extra: Any
    ) -> str:
        """One stream event (``usage`` and Quorum's extras as keywords)."""
        return sse.event(
            self._shape(
                id=self._id,
                created=self._created,
                model=self._model,
                choices=list(choices),
                system_fingerprint=self._fingerprint,
                **extra,
            )
        )
