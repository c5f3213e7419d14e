"""OpenAI chat-completions request and response shapes (field order follows OpenAI's spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from server.wire.common import STRICT_REQUEST, OpenAIObject, OpenAIRequest, Usage


class TextPart(BaseModel):
    """A text content part of a message."""

    model_config = ConfigDict(extra="ignore", **STRICT_REQUEST)

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of the conversation; text content only."""

    model_config = ConfigDict(extra="ignore", **STRICT_REQUEST)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(OpenAIRequest):
    """What ``POST /v1/chat/completions`` and ``/v1/creative`` take; they differ in ``model``."""

    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class ChatCompletionRequest(ChatRequest):
    """``POST /v1/chat/completions``: the model name picks the mode."""

    model: str = Field(description="The served name, alone or with :creative or :precise.")


class CreativeRequest(ChatRequest):
    """``POST /v1/creative``: the model defaults to the served one, in the creative mode."""

    model: str | None = Field(None, description="The served name, alone or with :creative.")


class ResponseMessage(BaseModel):
    """The assistant message of one choice."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


class TopLogprob(BaseModel):
    """An alternative token and its logprob."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobOut(BaseModel):
    """A sampled token, its logprob and its alternatives."""

    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    """Per-token logprobs of one choice."""

    content: list[TokenLogprobOut] | None
    refusal: list[TokenLogprobOut] | None = None


class ChatChoice(BaseModel):
    """One finished choice."""

    index: int
    message: ResponseMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"]


class ChatCompletion(OpenAIObject):
    """A ``chat.completion`` object."""

    object: Literal["chat.completion"] = "chat.completion"
    choices: list[ChatChoice]
    usage: Usage


class ChunkDelta(BaseModel):
    """What a stream chunk adds to a choice; unset fields are left out, as OpenAI does."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class ChunkChoice(BaseModel):
    """One choice's part of a stream chunk."""

    index: int
    delta: ChunkDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"] | None = None


class ChatCompletionChunk(OpenAIObject):
    """A ``chat.completion.chunk`` stream event."""

    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChunkChoice]
