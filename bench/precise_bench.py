"""Precise-mode costs, measured side by side in one run (absolute times drift on shared CPUs).

    .venv/bin/python bench/precise_bench.py [--model DIR] [--rounds 3] [--max-tokens 48]

Prints, on the real in-process vLLM engine (default: the embedded SmolLM2):
1. wall time of ``samples: 8`` (one engine request, n=8) vs ``samples: 1`` (greedy), same prompt;
2. ``samples: 8`` as one n=8 request vs 8 sequential n=1 requests (what proxies that loop do);
3. extraction + vote time for 64 samples, and its share of an 8-sample generation.
Runs alternate within each round so drift hits both sides alike; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from decoding.engine import ChatPrompt, SamplingSpec, collect
from decoding.extraction import extract_answer
from decoding.normalizer import AnswerNormalizer
from decoding.self_consistency import ConsistencyPlan, self_consistency
from decoding.voting import Ballot, vote
from server.engines.factory import model_folder
from server.engines.vllm_engine import VllmEngine
from server.runtime.settings import Settings

PROMPT = ChatPrompt([{"role": "user", "content": "What is 2+3? Reply with just the number."}])


def synthetic_samples(count: int, seed: int = 0) -> list[str]:
    """Reasoning-length texts with a mix of answer styles, like a 64-sample vote sees."""
    rng = random.Random(seed)
    styles = [
        "So the total is {v}. The answer is {v}.",
        "Adding them up gives \\boxed{{{v}}}",
        "Step by step we get {v}\n#### {v}",
        "Answer: {v}",
        "The result is \\frac{{{n}}}{{2}}",
        "I am not sure.",
    ]
    texts = []
    for _ in range(count):
        value = rng.choice([5, 5, 5, 6, 1000, 0.5])
        body = " ".join(
            rng.choice(["we", "add", "the", "two", "numbers", "carefully"]) for _ in range(300)
        )
        style = rng.choice(styles)
        texts.append(body + "\n" + style.format(v=value, n=int(value * 2) if value < 10 else 2))
    return texts


async def vote_once(texts: list[str]) -> float:
    """Seconds to extract, normalise and vote over ``texts`` (fresh normaliser: no warm cache;
    formulas judged in process, as the server's workers would)."""
    start = time.perf_counter()
    normalizer = AnswerNormalizer("auto")
    ballots = []
    for index, text in enumerate(texts):
        answer = extract_answer(text, "auto")
        judged = None if answer is None else (await normalizer.canonical(answer)).canonical
        ballots.append(Ballot(index, judged))
    vote(ballots)
    return time.perf_counter() - start


async def timed(coro: object) -> float:
    start = time.perf_counter()
    await coro  # type: ignore[misc]
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    settings = Settings(model=args.model, max_model_len=1024)
    engine = VllmEngine(settings, model_folder(settings))
    started = time.perf_counter()
    await engine.start()
    print(f"engine ready in {time.perf_counter() - started:.1f} s ({engine.info.version})")
    spec = SamplingSpec(temperature=0.7, max_tokens=args.max_tokens, seed=1)

    one, eight, sequential = [], [], []
    for r in range(args.rounds):
        seeded = replace(spec, seed=100 + r)
        one.append(
            await timed(self_consistency(engine, PROMPT, seeded, ConsistencyPlan(samples=1)))
        )
        eight.append(
            await timed(self_consistency(engine, PROMPT, seeded, ConsistencyPlan(samples=8)))
        )
        began = time.perf_counter()
        for i in range(8):  # the same 8 seeds, one request each
            await collect(engine, PROMPT, replace(seeded, n=1, seed=100 + r + i))
        sequential.append(time.perf_counter() - began)
    await engine.stop()

    texts = synthetic_samples(64)
    await vote_once(texts)  # math-verify's first use imports and warms sympy: not a vote's cost
    votes = [await vote_once(texts) for _ in range(5)]

    m1, m8, ms, mv = (statistics.median(x) for x in (one, eight, sequential, votes))
    print(f"rounds: {args.rounds}, max_tokens: {args.max_tokens}")
    print(f"samples=1 (greedy)            median {m1 * 1000:8.0f} ms")
    print(f"samples=8 (one n=8 request)   median {m8 * 1000:8.0f} ms")
    print(f"8 sequential n=1 requests     median {ms * 1000:8.0f} ms")
    print(f"vote+extraction, 64 samples   median {mv * 1000:8.1f} ms")
    print(f"ratio samples=8 / samples=1:          {m8 / m1:5.2f}x")
    print(f"ratio 8 sequential / one n=8 request: {ms / m8:5.2f}x")
    print(f"vote share of an 8-sample generation: {mv / m8:6.2%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="HF model folder (default: embedded)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    asyncio.run(main(parser.parse_args()))
