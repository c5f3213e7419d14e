"""Shapes shared by the OpenAI-compatible routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

# OpenAI's documented bounds; the server's own caps (n, max_tokens) come from Settings.
Temperature = Field(None, ge=0.0, le=2.0)
TopP = Field(None, gt=0.0, le=1.0)
Penalty = Field(None, ge=-2.0, le=2.0)
# Sample i of a request seeded s is seeded s + i (vLLM's own rule for n > 1), and samples and n
# are capped at MAX_FAN_OUT by the settings, so every derived seed stays inside int64. The bounds
# are exact as doubles: FastAPI writes schema bounds as floats, and must not round them.
MAX_FAN_OUT = 2**16
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 2 * MAX_FAN_OUT
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 256
# Request bodies are validated strictly: JSON's types as they are ("yes" is not a boolean, true
# is not 1, "3" is not 3; an integer is a valid float), and no NaN or infinity in any field.
STRICT_REQUEST = ConfigDict(strict=True, allow_inf_nan=False)
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STOP_CHARS)]
Stop = StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_STOP_SEQUENCES)]


class SamplingFields(BaseModel):
    """The sampling fields every request body shares (chat, completions, precise), declared
    once so that their bounds agree on every route."""

    model_config = STRICT_REQUEST

    frequency_penalty: float | None = Penalty
    presence_penalty: float | None = Penalty
    seed: int | None = Field(
        None,
        ge=SEED_MIN,
        le=SEED_MAX,
        description="Sample i is seeded seed + i, so the same seed replays the same samples.",
    )
    stop: Stop | None = Field(
        None,
        description=f"Up to {MAX_STOP_SEQUENCES} sequences of 1 to {MAX_STOP_CHARS} characters.",
    )
    temperature: float | None = Temperature
    top_p: float | None = TopP


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``: ask for a final usage chunk."""

    model_config = ConfigDict(extra="ignore", **STRICT_REQUEST)

    include_usage: bool | None = False


def _refuse_unless_null(value: Any, info: ValidationInfo) -> None:
    if value is not None:
        raise PydanticCustomError(
            "unsupported",
            "not supported by this server: refused rather than ignored, because ignoring "
            "{field} would change what the answer means",
            {"field": info.field_name},
        )


# An OpenAI field this server does not implement: absent or null, or the request is refused.
Unsupported = Annotated[
    Any,
    AfterValidator(_refuse_unless_null),
    WithJsonSchema({"type": "null", "description": "Not supported: only null is accepted."}),
]


class UnsupportedFields(BaseModel):
    """OpenAI request fields Quorum does not implement (tool calls, structured output, logit
    bias, best-of), refused with a 400 naming the field instead of silently ignored."""

    tools: Unsupported = None
    tool_choice: Unsupported = None
    functions: Unsupported = None
    function_call: Unsupported = None
    parallel_tool_calls: Unsupported = None
    response_format: Unsupported = None
    logit_bias: Unsupported = None
    best_of: Unsupported = None


class OpenAIRequest(SamplingFields, UnsupportedFields):
    """What the chat and legacy completions bodies share beyond sampling. Other fields are
    kept as extras: a ``<name>:precise`` request reads its precise options there (``extra_body``
    in the openai client) and refuses any other; plain and creative requests ignore them, as
    OpenAI-compatible servers do, except precise options, which need the precise mode."""

    model_config = ConfigDict(extra="allow", **STRICT_REQUEST)

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
    # Quorum's extra: whether batching can change an output ("batch_invariant": vLLM's
    # batch-invariant mode; "none": no guarantee; "unknown": an upstream server's own setting).
    determinism: Literal["batch_invariant", "none", "unknown"] = "unknown"


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
