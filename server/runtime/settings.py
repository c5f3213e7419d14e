"""One settings object for the whole server: CLI flags, ``QUORUM_*`` variables, defaults.

Precedence, highest first: command-line flag, environment variable, default. Names follow
``vllm serve`` where the meaning is the same (``--max-model-len``, ``--dtype``, ...). A list
setting (API keys, CORS origins, upstreams) takes one value, a comma-separated list or a JSON
list, from the environment or a flag (or a repeated flag).
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, CliSuppress, NoDecode, SettingsConfigDict

from modelprep import DEFAULT_MODEL_NAME, default_cache_dir
from server.wire.common import MAX_FAN_OUT

# What vLLM would fetch from the Hugging Face hub rather than read from a folder: ``name`` or
# ``org/name``. Anything else (absolute, ``./``, ``~``, deeper) is a folder, and must exist.
HUB_ID = re.compile(r"[\w-][\w.-]*(/[\w-][\w.-]*)?")


def _as_list(value: Any) -> Any:
    """One value, a comma-separated list or a JSON list (a repeated flag arrives joined by
    commas), so ``QUORUM_API_KEYS=sk-abc`` works as well as ``'["sk-a","sk-b"]'``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)  # a JSONDecodeError is a ValueError: reported with the setting
    return [item.strip() for item in text.split(",") if item.strip()]


ListSetting = Annotated[list[str], NoDecode, BeforeValidator(_as_list)]
SecretListSetting = Annotated[list[SecretStr], NoDecode, BeforeValidator(_as_list)]


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable only from this machine (``localhost`` included)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve anywhere


def loopback_host(data: dict[str, Any]) -> bool:
    """The playground's default: on when the validated ``host`` is a loopback address."""
    return is_loopback(str(data.get("host", "")))


_HELP = {
    "verify_workers": "Worker processes that run code candidates in the sandbox.",
    "verify_timeout_s": "The largest wall-clock limit a request may give a code candidate "
    "(verify.timeout_s); its CPU-time limit is the same, rounded up.",
    "verify_memory_mb": "Address space of a code candidate (RLIMIT_AS).",
    "verify_file_mb": "Largest file, and all files together, a code candidate may write.",
    "verify_processes": "Processes a code candidate's user may run at once (RLIMIT_NPROC).",
    "verify_budget_s": "Wall-clock time one request's checks may take in all; candidates not "
    "checked by then are reported unverified (null) and do not vote.",
}


class Settings(BaseSettings):
    """How a Quorum server is started; see ``quorum serve --help``."""

    model_config = SettingsConfigDict(
        env_prefix="QUORUM_",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="quorum serve",
        cli_exit_on_error=False,  # server.cli reports a bad flag in one line, exit code 2
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
    deterministic: bool = Field(
        False,
        description="Batch-invariant decoding (vLLM's VLLM_BATCH_INVARIANT=1; GPU engines "
        "only): a greedy or seeded request gives the same output whatever it is batched "
        "with, at some cost in speed. Reported in /v1/models and every precise receipt.",
    )
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
    # Judging answers (server.runtime.judge_pool): formulas are parsed and compared by math-verify
    # and sympy in worker processes, each answer bounded in time and memory.
    judge_workers: int = Field(
        2, ge=1, le=64, description="Worker processes that judge formula answers."
    )
    judge_timeout_s: float = Field(
        2.0,
        gt=0,
        le=600,
        description="Wall-clock limit per formula judgement: past it the worker is killed and "
        "the answer is kept as text (judge: timeout).",
    )
    judge_memory_mb: int = Field(
        512,
        ge=16,
        description="Memory a judge worker may allocate on top of its start-up size (address "
        "space, RLIMIT_AS); past it the answer is kept as text (judge: too_large).",
    )
    judge_budget_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Wall-clock judging time one request may spend in all; formulas left past "
        "it are kept as text (judge: timeout).",
    )
    # Verified voting (server.runtime.verifier): code candidates run in a sandbox, one child
    # process each, started from worker processes of their own pool.
    verify_workers: int = Field(2, ge=1, le=64, description=_HELP["verify_workers"])
    verify_timeout_s: float = Field(10.0, gt=0, le=120, description=_HELP["verify_timeout_s"])
    verify_memory_mb: int = Field(256, ge=32, le=65536, description=_HELP["verify_memory_mb"])
    verify_file_mb: int = Field(16, ge=1, le=4096, description=_HELP["verify_file_mb"])
    verify_processes: int = Field(16, ge=1, le=4096, description=_HELP["verify_processes"])
    verify_budget_s: float = Field(60.0, gt=0, le=3600, description=_HELP["verify_budget_s"])
    cors_origins: ListSetting = Field(
        default_factory=list, description="Browser origins allowed by CORS (default: CORS off)."
    )

    # Connections (server.runtime.connections): what a client that sends slowly, or not at
    # all, may hold.
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a connection has to send a request's complete headers; past it the "
        "connection is closed (with a 408 if part of a request came).",
    )
    max_header_bytes: int = Field(
        65_536,
        ge=1024,
        description="Largest request line plus headers; larger gets 431 and a closed connection.",
    )
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest pause between request body chunks; past it the client gets 408 "
        "and the connection is closed.",
    )
    keep_alive_timeout_s: int = Field(
        5,
        ge=1,
        description="Seconds an idle keep-alive connection stays open between requests (raise "
        "it above your load balancer's idle timeout).",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open client connections at once; past it new connections are closed at "
        "accept (keep it under the process's file limit, ulimit -n).",
    )
    # Testing only, hidden from --help: a scripted engine in a real process
    # (server.engines.paced), set as QUORUM_TEST_ENGINE=scripted.
    test_engine: CliSuppress[Literal["none", "scripted"]] = "none"
    test_token_delay_ms: CliSuppress[int] = Field(0, ge=0)
    # A request that never ends (QUORUM_TEST_HANG): ignoring cancellation, on a thread that
    # never returns, or blocking the event loop; for the shutdown deadline's tests.
    test_hang: CliSuppress[Literal["none", "cancel", "thread", "loop"]] = "none"

    # Remote upstreams (server.engines.upstream): OpenAI-compatible servers instead of vLLM here.
    upstreams: ListSetting = Field(
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
    api_keys: SecretListSetting = Field(
        default_factory=list, description="Bearer keys; empty means no auth."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    playground: bool = Field(
        default_factory=loopback_host,
        description="Serve the playground page at /playground (default: on only when --host is "
        "a loopback address, so a server reachable from elsewhere shows no page unasked).",
    )

    @field_validator("served_name")
    @classmethod
    def _name_has_no_mode_suffix(cls, value: str | None) -> str | None:
        if value is not None and (":" in value or not value.strip()):
            raise ValueError("served name must be non-empty and must not contain ':'")
        return value

    @field_validator("model")
    @classmethod
    def _model_folder_exists(cls, value: str | None) -> str | None:
        if value is None or Path(value).expanduser().exists() or HUB_ID.fullmatch(value):
            return value
        raise ValueError(f"no such model folder: {value}")

    @field_validator("upstreams")
    @classmethod
    def _upstreams_are_http_urls(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream URL must start with http:// or https://: {url!r}")
        if value and info.data.get("deterministic"):
            raise ValueError(
                "--deterministic sets the in-process engine's mode; upstream servers have "
                "their own: start them with VLLM_BATCH_INVARIANT=1 instead"
            )
        return value

    @field_validator("max_tokens_cap")
    @classmethod
    def _cap_fits_context(cls, value: int | None, info: ValidationInfo) -> int | None:
        window = info.data.get("max_model_len")  # validated before: declared above
        if value is not None and window is not None and value >= window:
            raise ValueError(f"must be smaller than max_model_len ({window})")
        return value

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
