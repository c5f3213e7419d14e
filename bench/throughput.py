"""Engine start time and decode throughput on the real in-process engine, side by side.

    .venv/bin/python bench/throughput.py [--model DIR] [--rounds 3] [--max-tokens 128]

Prints tokens/s for one stream (streamed, as a chat client sees it) and for 8 concurrent
requests (batched), alternating within each round, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from decoding.engine import ChatPrompt, SamplingSpec, collect
from server.engines.factory import model_folder
from server.engines.vllm_engine import VllmEngine
from server.runtime.settings import Settings

PROMPT = ChatPrompt([{"role": "user", "content": "Write a long story about a lighthouse keeper."}])


async def one_stream(engine: VllmEngine, spec: SamplingSpec) -> tuple[int, float]:
    """Tokens and seconds for one streamed request."""
    start, tokens = time.perf_counter(), 0
    async for chunk in engine.generate(PROMPT, spec, stream=True):
        tokens += sum(d.token_count for d in chunk.deltas)
    return tokens, time.perf_counter() - start


async def batched(engine: VllmEngine, spec: SamplingSpec, width: int) -> tuple[int, float]:
    """Tokens and seconds for ``width`` concurrent requests."""
    start = time.perf_counter()
    results = await asyncio.gather(*(collect(engine, PROMPT, spec) for _ in range(width)))
    return sum(g.completion_tokens for g in results), time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    settings = Settings(model=args.model, max_model_len=1024)
    engine = VllmEngine(settings, model_folder(settings))
    began = time.perf_counter()
    await engine.start()
    print(f"engine start (load + warm-up): {time.perf_counter() - began:.1f} s")
    single, many = [], []
    for r in range(args.rounds):
        spec = SamplingSpec(temperature=0.8, max_tokens=args.max_tokens, seed=r)
        tokens, seconds = await one_stream(engine, spec)
        single.append(tokens / seconds)
        tokens, seconds = await batched(engine, spec, 8)
        many.append(tokens / seconds)
    await engine.stop()
    s, m = statistics.median(single), statistics.median(many)
    print(f"one stream:          {s:7.1f} tokens/s (median of {args.rounds})")
    print(f"8 concurrent:        {m:7.1f} tokens/s")
    print(f"ratio batched/single: {m / s:5.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    asyncio.run(main(parser.parse_args()))
