"""OpenAI legacy completions request and response shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from server.wire.common import OpenAIObject, OpenAIRequest


class CompletionRequest(OpenAIRequest):
    """``POST /v1/completions``; a prompt is one string or a list of strings."""

    model: str
    prompt: str | list[str]
    echo: bool | None = False
    logprobs: int | None = Field(None, ge=0, le=5)
    max_tokens: int | None = Field(16, ge=1)
    suffix: str | None = None


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


class Completion(OpenAIObject):
    """A ``text_completion`` object or stream chunk."""

    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChoice]

    @model_serializer(mode="wrap")
    def _drop_null_usage(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI's schema has no null usage: stream chunks before the last leave it out.
        data: dict[str, Any] = handler(self)
        if data.get("usage") is None:
            data.pop("usage", None)
        return data
