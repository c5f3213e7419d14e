"""The in-process vLLM engine (``AsyncLLM``) behind the ``decoding.Engine`` protocol.

Quorum renders chat templates and tokenizes itself, then hands vLLM token ids: the prompt is
tokenized once, its length is checked against the context before the engine sees it, and
usage counts are exact. vLLM is imported lazily so the rest of the server (and its tests) load
without it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decoding.engine import ChatPrompt, EngineInfo, Prompt, SamplingSpec, TextPrompt
from decoding.samples import FinishReason, GenerationChunk, SampleDelta, TokenLogprob
from server.errors import EngineFailed, EngineUnavailable, InvalidRequest, context_overflow
from server.runtime.settings import Settings

if TYPE_CHECKING:
    from vllm.outputs import CompletionOutput

log = logging.getLogger(__name__)


def configure_environment(settings: Settings, run_dir: Path) -> None:
    """Set vLLM's environment defaults before it is imported (the user's own values win).

    ``run_dir`` is this process's private temporary folder: vLLM leaves socket files in the
    temporary folder at every start, so each server gets one and removes it at exit.
    """
    cores = os.cpu_count() or 1
    os.environ["TMPDIR"] = str(run_dir)
    tempfile.tempdir = None  # re-read TMPDIR
    # The CPU backend compiles a kernel with g++ at the first logprobs request: keep its cache.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(settings.cache_dir / "inductor"))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.kv_cache_space_gib))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(settings.cache_dir / "vllm"))
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    if settings.model is None or Path(settings.model).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if settings.deterministic:
        # Read by vLLM at import and in its engine processes (which inherit this environment):
        # batch-invariant matmul, softmax and reductions, and an attention backend that
        # supports the mode (FlashAttention, FlexAttention or Triton's).
        os.environ["VLLM_BATCH_INVARIANT"] = "1"


def batch_invariant(settings: Settings) -> bool:
    """Whether the engine will run vLLM's batch-invariant mode: ``--deterministic``, or
    ``VLLM_BATCH_INVARIANT`` set in the environment (read as vLLM reads it)."""
    if settings.deterministic:
        return True
    try:
        return bool(int(os.environ.get("VLLM_BATCH_INVARIANT", "0") or "0"))
    except ValueError:
        return False


def cpu_refusal() -> str | None:
    """Why ``--deterministic`` cannot run on this install, or None: vLLM's batch-invariant
    kernels are Triton GPU kernels (CUDA, ROCm, XPU); the CPU build has none."""
    version = engine_version()
    if version.startswith("vllm-cpu"):
        return (
            f"--deterministic needs a GPU build of vLLM (its batch-invariant kernels run on "
            f"CUDA, ROCm or XPU); this is {version}. On the CPU, float32 greedy decoding is "
            "repeatable in practice but not guaranteed (bench/README.md)"
        )
    return None


def engine_version() -> str:
    """The installed vLLM distribution and version (``vllm-cpu`` or ``vllm``)."""
    for dist in ("vllm-cpu", "vllm"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "vllm unknown"


def engine_args(settings: Settings, model_dir: Path, *, on_cpu: bool) -> dict[str, Any]:
    """vLLM's ``AsyncEngineArgs`` for these settings on this platform (a plain dict, so the
    choice is testable without vLLM)."""
    if on_cpu and batch_invariant(settings):
        raise ValueError(cpu_refusal() or "--deterministic needs a GPU engine")
    dtype = settings.dtype
    if dtype == "auto" and on_cpu:
        dtype = "float32"  # bfloat16 is slower on AVX2 CPUs (measured)
    eager = settings.enforce_eager if settings.enforce_eager is not None else on_cpu
    return dict(
        model=str(model_dir),
        tokenizer=settings.tokenizer,
        served_model_name=settings.model_name,
        dtype=dtype,
        max_model_len=settings.max_model_len,
        enforce_eager=eager,
        max_num_seqs=settings.max_num_seqs,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        tensor_parallel_size=settings.tensor_parallel_size,
        seed=settings.seed,
        trust_remote_code=settings.trust_remote_code,
        # Per-request seeds with chunked prefill kill the CPU engine (vLLM 0.32:
        # "CPU Generator does not use offset", then EngineDeadError).
        enable_chunked_prefill=False if on_cpu else None,
        # Requests carry their own sampling parameters; the model folder's defaults do not
        # silently change them.
        generation_config="vllm",
        disable_log_stats=True,
    )


def _finish_reason(reason: str | None) -> FinishReason | None:
    if reason is None:
        return None
    if reason in ("length", "abort"):
        return reason  # type: ignore[return-value]
    return "stop"


class VllmEngine:
    """vLLM's async engine in this process; ``start`` and ``stop`` belong to the app lifespan."""

    def __init__(self, settings: Settings, model_dir: Path) -> None:
        self._settings = settings
        self._model_dir = model_dir
        self._engine: Any = None
        self._tokenizer: Any = None
        self._run_dir: Path | None = None
        self._tmpdir_before: str | None = None
        # Prompts are rendered on one thread of their own, as vLLM's server does: the GIL
        # makes more threads no faster, and vLLM's thread-safe tokenizer deep-copies itself
        # (0.2 s of CPU for SmolLM2's) whenever a render finds its copies all in use, which
        # concurrent renders on asyncio's shared pool did once per new level of concurrency.
        self._render_thread: ThreadPoolExecutor | None = None
        self.active = 0  # engine requests open now
        self._info = EngineInfo(
            model=settings.model_name,
            max_model_len=settings.max_model_len,
            engine="vllm",
            version=engine_version(),
            determinism="batch_invariant" if batch_invariant(settings) else "none",
        )

    @property
    def info(self) -> EngineInfo:
        """What this engine serves."""
        return self._info

    @property
    def errored(self) -> bool:
        """True once the engine core has died; the process should then be restarted."""
        return bool(self._engine is not None and self._engine.errored)

    @property
    def ready(self) -> bool:
        """Able to take work: started (the lifespan waits for that) and alive."""
        return self._engine is not None and not self.errored

    async def start(self) -> None:
        """Build the engine in a worker thread (the event loop keeps answering /health), then
        warm it up: the first logprobs request compiles a CPU kernel for several seconds, and
        readiness means no user request pays for that."""
        self._settings.cache_dir.mkdir(parents=True, exist_ok=True)
        self._run_dir = Path(tempfile.mkdtemp(prefix="quorum-run-"))
        self._tmpdir_before = os.environ.get("TMPDIR")
        configure_environment(self._settings, self._run_dir)
        self._engine = await asyncio.to_thread(self._build)
        self._tokenizer = self._engine.get_tokenizer()
        self._render_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        warmup = SamplingSpec(n=1, temperature=0.0, max_tokens=1, logprobs=1)
        async for _ in self.generate(TextPrompt("warm up"), warmup, stream=False):
            pass

    def _build(self) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.engine.async_llm_engine import AsyncLLMEngine
        from vllm.platforms import current_platform

        args = engine_args(self._settings, self._model_dir, on_cpu=current_platform.is_cpu())
        return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**args))

    async def stop(self) -> None:
        """Shut the engine and its worker processes down, and remove the temporary folder."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await asyncio.to_thread(engine.shutdown)
            # AsyncLLM.__del__ would shut down again at interpreter exit, after its modules
            # are gone; drop the last reference while they still exist.
            del engine
            gc.collect()
        if self._render_thread is not None:
            self._render_thread.shutdown(wait=False, cancel_futures=True)
            self._render_thread = None
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
            # The folder is gone: later temporary files of this process (an in-process engine
            # in a longer-lived program) go where they went before the engine started.
            if self._tmpdir_before is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = self._tmpdir_before
            tempfile.tempdir = None

    def _render(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, ChatPrompt):
            text = self._tokenizer.apply_chat_template(
                list(prompt.messages), tokenize=False, add_generation_prompt=True
            )
            return list(self._tokenizer.encode(text, add_special_tokens=False))
        return list(self._tokenizer.encode(prompt.text))

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        """Run one engine request of ``spec.n`` samples; closing the iterator aborts it."""
        if self._engine is None or self._render_thread is None:
            raise EngineUnavailable("the engine is not running")
        loop = asyncio.get_running_loop()
        token_ids = await loop.run_in_executor(self._render_thread, self._render, prompt)
        limit = self._info.max_model_len
        if len(token_ids) + spec.max_tokens > limit:
            raise context_overflow(limit, len(token_ids), spec.max_tokens)
        from vllm.exceptions import VLLMClientError
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            params = self._sampling_params(spec, stream)
        except (VLLMClientError, ValueError) as exc:  # e.g. n > 1 with temperature 0
            raise InvalidRequest(str(exc)[:500]) from exc
        request_id = f"quorum-{uuid.uuid4().hex}"
        outputs = self._engine.generate(
            TokensPrompt(prompt_token_ids=token_ids), params, request_id
        )
        self.active += 1
        try:
            async for out in outputs:
                deltas = [self._delta(o, spec) for o in out.outputs]
                yield GenerationChunk(prompt_tokens=len(token_ids), deltas=deltas)
        except (VLLMClientError, ValueError) as exc:
            raise InvalidRequest(str(exc)[:500]) from exc
        except EngineDeadError as exc:
            raise EngineFailed("the engine died while serving this request") from exc
        finally:
            self.active -= 1
            await outputs.aclose()

    def _sampling_params(self, spec: SamplingSpec, stream: bool) -> Any:
        """vLLM's parameters: ``SamplingSpec`` uses ``SamplingParams``' names, so the spec's
        fields pass through; only the unset top-k, the stop tuple and the output kind differ."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        fields = asdict(spec)
        fields.update(top_k=spec.top_k or 0, stop=list(spec.stop) or None)
        kind = RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY
        return SamplingParams(**fields, output_kind=kind)

    def _delta(self, output: CompletionOutput, spec: SamplingSpec) -> SampleDelta:
        logprobs: list[TokenLogprob] | None = None
        if spec.logprobs is not None and output.logprobs is not None:
            logprobs = []
            for token_id, position in zip(output.token_ids, output.logprobs, strict=False):
                if position is None:
                    continue
                chosen = position[token_id]
                top = sorted(
                    (lp for lp in position.values() if lp.rank is not None),
                    key=lambda lp: lp.rank or 0,
                )[: spec.logprobs]
                logprobs.append(
                    TokenLogprob(
                        token=chosen.decoded_token or "",
                        logprob=chosen.logprob,
                        top=tuple((lp.decoded_token or "", lp.logprob) for lp in top),
                    )
                )
        return SampleDelta(
            index=output.index,
            text=output.text,
            token_count=len(output.token_ids),
            logprobs=logprobs,
            finish_reason=_finish_reason(output.finish_reason),
        )
