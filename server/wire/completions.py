"""OpenAI legacy completions request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from server.wire.common import OpenAIObject, OpenAIRequest

COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for legacy completions


class CompletionRequest(OpenAIRequest):
    """``POST /v1/completions``; a prompt is one string or a list of strings."""

    model: str = Field(description="The served name, alone or with :creative or :precise.")
    prompt: str | Annotated[list[str], Field(min_length=1)]
    echo: bool | None = False
    logprobs: int | None = Field(None, ge=0, le=5)
    max_tokens: int | None = Field(
        None, ge=1, description=f"Default {COMPLETIONS_DEFAULT_MAX_TOKENS} (OpenAI's)."
    )
    suffix: Annotated[str, Field(max_length=0)] | None = Field(
        None, description="Not supported: only empty or null is accepted."
    )


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
