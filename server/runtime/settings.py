"""One settings object for the whole server: CLI flags, ``QUORUM_*`` variables, defaults.

Precedence, highest first: command-line flag, environment variable, default. Names follow
``vllm serve`` where the meaning is the same (``--max-model-len``, ``--dtype``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, CliSuppress, SettingsConfigDict

from modelprep import DEFAULT_MODEL_NAME, default_cache_dir
from server.wire.common import MAX_FAN_OUT


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
        cli_shortcuts={"upstreams": "upstream"},
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
    max_n: int = Field(16, ge=1, le=MAX_FAN_OUT, description="Largest n a request may ask for.")
    max_samples: int = Field(
        64, ge=1, le=MAX_FAN_OUT, description="Largest precise-mode sample count."
    )
    max_tokens_cap: int | None = Field(
        None, ge=1, description="Largest max_tokens a request may ask for (default: context)."
    )
    default_max_tokens: int = Field(
        256, ge=1, description="max_tokens for chat requests that set none."
    )
    max_temperature: float = Field(
        2.0, ge=0.0, le=2.0, description="Largest temperature a request may ask for."
    )
    max_top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="Largest top_p a request may ask for."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body; larger gets 413 before parsing."
    )

    # Load and time (server.runtime.admission, server.runtime.lifecycle).
    max_inflight_samples: int = Field(
        256,
        ge=1,
        description="Samples running or queued at once (a request counts its n, or its "
        "precise samples); requests past it get 429 at once.",
    )
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 429.")
    request_timeout_s: float | None = Field(
        None,
        gt=0,
        description="Server-side limit per request: past it the engine work is "
        "aborted and the client gets 504 (default: none).",
    )
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long in-flight requests may take to finish."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed by CORS (default: CORS off)."
    )
    # Testing only, hidden from --help: a scripted engine in a real process
    # (server.engines.paced), set as QUORUM_TEST_ENGINE=scripted.
    test_engine: CliSuppress[Literal["none", "scripted"]] = "none"
    test_token_delay_ms: CliSuppress[int] = Field(0, ge=0)

    # Remote upstreams (server.engines.upstream): OpenAI-compatible servers instead of vLLM here.
    upstreams: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible upstream URL (e.g. a vLLM server); repeat --upstream for "
        "replicas. Set: Quorum serves through them and loads no model itself.",
    )
    upstream_api_key: SecretStr | None = Field(
        None, description="Bearer key the upstreams require (prefer QUORUM_UPSTREAM_API_KEY)."
    )
    upstream_connect_timeout_s: float = Field(5.0, gt=0, description="Upstream connect timeout.")
    upstream_read_timeout_s: float = Field(
        600.0, gt=0, description="Longest wait for upstream bytes (a whole non-streamed answer)."
    )
    upstream_health_interval_s: float = Field(
        5.0, gt=0, description="Seconds between health probes of each upstream."
    )
    upstream_start_timeout_s: float = Field(
        600.0, ge=0, description="At start, how long to wait for a first healthy upstream."
    )
    upstream_health_path: str = Field(
        "/health",
        pattern=r"^/[^\s?#]*$",
        description="Path probed for each upstream's health. Behind vllm-router use /readiness "
        "(200 while any worker is healthy; its /health is 503 while any one is down).",
    )
    upstream_tokenize: bool = Field(
        True,
        description="Count each prompt with the upstream's /tokenize (vLLM's) first, so one "
        "that does not fit the context is a 400. Off for upstreams whose /tokenize is not "
        "vLLM's and answers 400 (Ray Serve LLM): they enforce their own limits.",
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

    @field_validator("upstreams")
    @classmethod
    def _upstreams_are_http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream URL must start with http:// or https://: {url!r}")
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
