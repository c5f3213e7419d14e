"""The small engine protocol every decoding strategy runs on.

Concrete engines (in-process vLLM, remote OpenAI-compatible upstreams, a scripted engine for
tests) live in ``server/engines`` and are interchangeable because strategies see only this.
A generation is a stream of ``GenerationChunk`` deltas (``decoding.samples``); a non-streaming
caller folds them with ``collect``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from decoding.samples import Generation, GenerationChunk, fold


@dataclass(frozen=True)
class ChatPrompt:
    """A conversation in OpenAI message form; the engine applies the model's chat template."""

    messages: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class TextPrompt:
    """A raw text prompt, sent to the model as is."""

    text: str


Prompt = ChatPrompt | TextPrompt


# Whether an engine's output can depend on what else it batches: ``batch_invariant`` (vLLM's
# batch-invariant kernels: a greedy or seeded request gives the same tokens in any batch),
# ``none`` (no such guarantee), ``unknown`` (a remote server's setting, which we cannot see).
Determinism = Literal["batch_invariant", "none", "unknown"]


@dataclass(frozen=True)
class EngineInfo:
    """What an engine serves, for receipts, ``/v1/models`` and request validation."""

    model: str
    max_model_len: int
    engine: str
    version: str
    determinism: Determinism = "unknown"


@dataclass(frozen=True)
class SamplingSpec:
    """Engine-neutral sampling parameters for one engine request of ``n`` samples."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # None: no logprobs. 0: the sampled token's logprob only. k > 0: also the k most likely.
    logprobs: int | None = None


@runtime_checkable
class Engine(Protocol):
    """Generates ``spec.n`` samples for one prompt as a single engine request.

    ``generate`` is an async generator, so callers can always ``aclose`` it; closing it (or
    cancelling the task iterating it) must abort the engine request, all of its samples.
    """

    @property
    def info(self) -> EngineInfo: ...

    def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]: ...


@runtime_checkable
class ManagedEngine(Engine, Protocol):
    """An engine with a lifetime the server owns: started and stopped by the app's lifespan,
    watched for death (``errored``), asked whether it can take work now (``ready``: an engine
    of remote replicas cannot while none is healthy), and counting its open requests
    (``active``)."""

    @property
    def errored(self) -> bool: ...

    @property
    def ready(self) -> bool: ...

    @property
    def active(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def collect(engine: Engine, prompt: Prompt, spec: SamplingSpec) -> Generation:
    """Run one non-streaming engine request and return its finished samples."""
    async with contextlib.aclosing(engine.generate(prompt, spec, stream=False)) as chunks:
        return fold([chunk async for chunk in chunks], spec.n)
