"""The small engine protocol every decoding strategy runs on.

Concrete engines (in-process vLLM, remote OpenAI-compatible upstreams, a scripted engine for
tests) live in ``server/engines`` and are interchangeable because strategies see only this.
A generation is a stream of ``GenerationChunk`` deltas; a non-streaming caller folds them with
``collect``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class ChatPrompt:
    """A conversation in OpenAI message form; the engine applies the model's chat template."""

    messages: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class TextPrompt:
    """A raw text prompt, sent to the model as is."""

    text: str


Prompt = ChatPrompt | TextPrompt


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


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its logprob and, if asked for, its most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class SampleDelta:
    """What one sample (by ``index``) added since the previous chunk."""

    index: int
    text: str = ""
    token_count: int = 0
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None


@dataclass
class GenerationChunk:
    """One step of a generation: the samples that advanced, and the prompt's token count."""

    prompt_tokens: int
    deltas: list[SampleDelta] = field(default_factory=list)


@dataclass(frozen=True)
class EngineInfo:
    """What an engine serves, for receipts, ``/v1/models`` and request validation."""

    model: str
    max_model_len: int
    engine: str
    version: str


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
    watched for death (``errored``), and counting its open requests (``active``)."""

    @property
    def errored(self) -> bool: ...

    @property
    def active(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Sample:
    """A finished sample, folded from its deltas."""

    index: int
    text: str = ""
    token_count: int = 0
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None

    @property
    def mean_logprob(self) -> float | None:
        """Mean logprob of the sampled tokens, or None when the engine gave none."""
        if not self.logprobs:
            return None
        return sum(t.logprob for t in self.logprobs) / len(self.logprobs)

    def add(self, delta: SampleDelta) -> None:
        """Append one delta of this sample."""
        self.text += delta.text
        self.token_count += delta.token_count
        if delta.logprobs is not None:
            self.logprobs = (self.logprobs or []) + delta.logprobs
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason


@dataclass
class Generation:
    """All samples of one engine request, in index order, with the prompt's token count."""

    prompt_tokens: int
    samples: list[Sample]

    @property
    def completion_tokens(self) -> int:
        """Tokens generated across all samples."""
        return sum(s.token_count for s in self.samples)


def fold(chunks: Sequence[GenerationChunk], n: int) -> Generation:
    """Fold a sequence of chunks into finished samples (used by ``collect`` and tests)."""
    samples = [Sample(index=i) for i in range(n)]
    prompt_tokens = 0
    for chunk in chunks:
        prompt_tokens = chunk.prompt_tokens
        for delta in chunk.deltas:
            samples[delta.index].add(delta)
    return Generation(prompt_tokens=prompt_tokens, samples=samples)


async def collect(engine: Engine, prompt: Prompt, spec: SamplingSpec) -> Generation:
    """Run one non-streaming engine request and return its finished samples."""
    async with contextlib.aclosing(engine.generate(prompt, spec, stream=False)) as chunks:
        return fold([chunk async for chunk in chunks], spec.n)
