"""OpenAI legacy completions request and response shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from server.wire.common import Penalty, StreamOptions, Temperature, TopP, Usage


class CompletionRequest(BaseModel):
    """``POST /v1/completions``; a prompt is one string or a list of strings."""

    model_config = ConfigDict(extra="allow")

    model: str
    prompt: str | list[str]
    echo: bool | None = False
    frequency_penalty: float | None = Penalty
    logprobs: int | None = Field(None, ge=0, le=5)
    max_tokens: int | None = Field(16, ge=1)
    n: int | None = Field(None, ge=1)
    presence_penalty: float | None = Penalty
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Temperature
    top_p: float | None = TopP
    user: str | None = None


class CompletionLogprobs(BaseModel):
    """Legacy per-token logprobs of one choice."""

    text_offset: list[int]
    token_logprobs: list[float]
    tokens: list[str]
    top_logprobs: list[dict[str, float]]


class CompletionChoice(BaseModel):
    """One choice; in a stream chunk ``finish_reason`` stays null until it ends."""

    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length", "content_filter"] | None


class Completion(BaseModel):
    """A ``text_completion`` object or stream chunk."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None

    @model_serializer(mode="wrap")
    def _drop_null_usage(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI's schema has no null usage: stream chunks before the last leave it out.
        data: dict[str, Any] = handler(self)
        if data.get("usage") is None:
            data.pop("usage", None)
        return data
