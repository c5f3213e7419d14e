"""Shapes shared by the OpenAI-compatible routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# OpenAI's documented bounds; the server's own caps (n, max_tokens) come from Settings.
Temperature = Field(None, ge=0.0, le=2.0)
TopP = Field(None, gt=0.0, le=1.0)
Penalty = Field(None, ge=-2.0, le=2.0)


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``: ask for a final usage chunk."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool | None = False


class Usage(BaseModel):
    """Token counts: the prompt counted once, completions summed over choices."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        """Usage whose total adds up by construction."""
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "quorum"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    """The body of an OpenAI error."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorDetail
