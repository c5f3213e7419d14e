"""Shapes shared by the OpenAI-compatible routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# OpenAI's documented bounds; the server's own caps (n, max_tokens) come from Settings.
Temperature = Field(None, ge=0.0, le=2.0)
TopP = Field(None, gt=0.0, le=1.0)
Penalty = Field(None, ge=-2.0, le=2.0)
# Sample i of a request seeded s is seeded s + i (vLLM's own rule for n > 1), and samples and n
# are capped at MAX_FAN_OUT by the settings, so every derived seed stays inside int64.
MAX_FAN_OUT = 2**16
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1 - MAX_FAN_OUT


class SamplingFields(BaseModel):
    """The sampling fields every request body shares (chat, completions, precise), declared
    once so that their bounds agree on every route."""

    frequency_penalty: float | None = Penalty
    presence_penalty: float | None = Penalty
    seed: int | None = Field(
        None,
        ge=SEED_MIN,
        le=SEED_MAX,
        description="Sample i is seeded seed + i, so the same seed replays the same samples.",
    )
    stop: str | list[str] | None = None
    temperature: float | None = Temperature
    top_p: float | None = TopP


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``: ask for a final usage chunk."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool | None = False


class OpenAIRequest(SamplingFields):
    """What the chat and legacy completions bodies share beyond sampling; fields OpenAI's
    schema does not know are kept (``extra_body``: precise options ride there)."""

    model_config = ConfigDict(extra="allow")

    n: int | None = Field(None, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None


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


class OpenAIObject(BaseModel):
    """The envelope every OpenAI completion object shares, in OpenAI's field order; subclasses
    narrow ``object``, ``choices`` and ``usage``. Quorum's extras travel in extra top-level
    fields (``quorum``), so OpenAI clients ignore them."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str
    created: int
    model: str
    choices: list[Any]
    usage: Usage | None = None
    system_fingerprint: str | None = None


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
