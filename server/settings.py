"""One settings object for the whole server: CLI flags, ``QUORUM_*`` variables, defaults.

Precedence, highest first: command-line flag, environment variable, default. Names follow
``vllm serve`` where the meaning is the same (``--max-model-len``, ``--dtype``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.embedded_model import DEFAULT_MODEL_NAME, default_cache_dir


class Settings(BaseSettings):
    """How a Quorum server is started; see ``quorum serve --help``."""

    model_config = SettingsConfigDict(
        env_prefix="QUORUM_",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="quorum serve",
        cli_exit_on_error=True,
        cli_parse_none_str="none",
        extra="forbid",
    )

    # Network.
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on (0: any free).")

    # Model and engine (vLLM's names).
    model: str | None = Field(
        None,
        description="Hugging Face model folder. Default: the embedded SmolLM2-135M-Instruct, "
        "prepared on first use in the cache folder.",
    )
    served_name: str | None = Field(
        None, description="Model name clients use (default: the model folder's name)."
    )
    tokenizer: str | None = Field(None, description="Tokenizer folder (default: the model's).")
    max_model_len: int = Field(2048, ge=16, description="Context window in tokens.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; auto is float32 on the CPU, the model's on a GPU."
    )
    enforce_eager: bool | None = Field(
        None,
        description="Skip graph compilation (default: on for the CPU, where it costs ~2 min "
        "per start; off on a GPU).",
    )
    max_num_seqs: int = Field(64, ge=1, description="Sequences the engine batches at once.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="GPU memory share.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs to shard the model over.")
    kv_cache_space_gib: int = Field(
        1, ge=1, description="CPU KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)."
    )
    seed: int = Field(0, description="Engine seed for requests that set none.")
    trust_remote_code: bool = Field(False, description="Allow model code from the folder.")
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the embedded model and engine caches live (outside the repo).",
    )

    # Request caps: every fan-out field is bounded.
    max_n: int = Field(16, ge=1, description="Largest n a request may ask for.")
    max_samples: int = Field(64, ge=1, description="Largest precise-mode sample count.")
    max_tokens_cap: int | None = Field(
        None, ge=1, description="Largest max_tokens a request may ask for (default: context)."
    )
    default_max_tokens: int = Field(
        256, ge=1, description="max_tokens for chat requests that set none."
    )

    # Operation.
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="Bearer keys; empty means no auth."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")

    @field_validator("served_name")
    @classmethod
    def _name_has_no_mode_suffix(cls, value: str | None) -> str | None:
        if value is not None and (":" in value or not value.strip()):
            raise ValueError("served name must be non-empty and must not contain ':'")
        return value

    @model_validator(mode="after")
    def _caps_fit_context(self) -> Settings:
        if self.max_tokens_cap is not None and self.max_tokens_cap >= self.max_model_len:
            raise ValueError("max_tokens_cap must be smaller than max_model_len")
        return self

    @property
    def model_name(self) -> str:
        """The name clients address the model by."""
        if self.served_name:
            return self.served_name
        if self.model is None:
            return DEFAULT_MODEL_NAME
        return Path(self.model).name or self.model

    @property
    def tokens_cap(self) -> int:
        """Largest max_tokens any request may ask for."""
        return self.max_tokens_cap or self.max_model_len - 1
