"""A scripted engine: deterministic text for fast API tests, no model involved.

Each sample's text comes from a script function of (prompt, spec, sample index); the text is
split into word "tokens" so streaming, ``max_tokens``, ``stop`` and logprobs behave like an
engine's. Every call is recorded so tests can assert what the server asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from decoding.engine import ChatPrompt, EngineInfo, Prompt, SamplingSpec
from decoding.samples import FinishReason, GenerationChunk, SampleDelta, TokenLogprob
from server.errors import context_overflow

Script = Callable[[Prompt, SamplingSpec, int], str]


def echo_script(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    """Default script: a short reply naming the sample index and the last user text."""
    last = prompt.messages[-1].get("content", "") if isinstance(prompt, ChatPrompt) else prompt.text
    return f"sample {index} says: {last}"


def prompt_length(prompt: Prompt) -> int:
    """Word count of the prompt, standing in for its token count."""
    if isinstance(prompt, ChatPrompt):
        return sum(len(str(m.get("content", "")).split()) + 2 for m in prompt.messages)
    return len(prompt.text.split())


@dataclass
class ScriptedEngine:
    """Implements ``decoding.ManagedEngine`` from a script; records every request."""

    script: Script = echo_script
    max_model_len: int = 2048
    calls: list[tuple[Prompt, SamplingSpec, bool]] = field(default_factory=list)
    active: int = 0
    errored: bool = False  # a script never dies; see ``PacedEngine`` for one that does
    ready: bool = True  # tests may set it, as an upstream engine's replicas would

    async def start(self) -> None:
        """Nothing to load."""

    async def stop(self) -> None:
        """Nothing to release."""

    @property
    def info(self) -> EngineInfo:
        """What this engine pretends to serve."""
        return EngineInfo(
            model="scripted", max_model_len=self.max_model_len, engine="scripted", version="0"
        )

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        """Yield each sample word by word (streaming) or whole (not streaming)."""
        self.calls.append((prompt, spec, stream))
        prompt_tokens = prompt_length(prompt)
        if prompt_tokens + spec.max_tokens > self.max_model_len:
            raise context_overflow(self.max_model_len, prompt_tokens, spec.max_tokens)
        samples = [self._sample(prompt, spec, i) for i in range(spec.n)]
        self.active += 1
        try:
            if not stream:
                deltas = [
                    self._delta(spec, i, words, reason) for i, (words, reason) in enumerate(samples)
                ]
                yield GenerationChunk(prompt_tokens, deltas)
                return
            for step in range(max(max(len(words), 1) for words, _ in samples)):
                await asyncio.sleep(0)  # a scheduling point, like a real engine step
                deltas = []
                for i, (words, reason) in enumerate(samples):
                    last = max(len(words), 1) - 1
                    if step <= last:
                        finish = reason if step == last else None
                        deltas.append(self._delta(spec, i, words[step : step + 1], finish))
                yield GenerationChunk(prompt_tokens, deltas)
        finally:
            self.active -= 1

    def _sample(
        self, prompt: Prompt, spec: SamplingSpec, index: int
    ) -> tuple[list[str], FinishReason]:
        """The sample's word tokens, cut at a stop string or at max_tokens, and why it ended."""
        text = self.script(prompt, spec, index)
        for stop in spec.stop:
            if stop in text:
                text = text[: text.index(stop)]
        words = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
        words = [w for w in words if w]
        if len(words) > spec.max_tokens:
            return words[: spec.max_tokens], "length"
        return words, "stop"

    @staticmethod
    def _delta(
        spec: SamplingSpec, index: int, words: list[str], finish: FinishReason | None
    ) -> SampleDelta:
        logprobs = None
        if spec.logprobs is not None:
            logprobs = [
                TokenLogprob(token=w, logprob=-0.5, top=((w, -0.5),) * min(spec.logprobs, 1))
                for w in words
            ]
        return SampleDelta(
            index=index,
            text="".join(words),
            token_count=len(words),
            logprobs=logprobs,
            finish_reason=finish,
        )
