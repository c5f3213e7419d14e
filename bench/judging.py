"""The judging cost of an ordinary precise vote, before and after the judge pool, side by side.

    .venv/bin/python bench/judging.py [--votes 200] [--base 8ee0b74]

A vote of 64 samples (short reasoning texts: plain numbers, some fractions, a few LaTeX
answers) goes through ``self_consistency`` on an instant engine, so what is timed is judging:
extraction, keys, formulas, the vote. BEFORE is the ``decoding`` package of commit ``--base``
(formulas parsed by sympy in a thread of this process), loaded from git into a temporary folder
under another package name; AFTER is this tree's, with formulas judged in the judge pool's
worker processes (``server.runtime.judge_pool``, default settings). Votes alternate between the
two so machine drift hits both alike. Meanwhile a probe wakes every millisecond on the event
loop and records how late it wakes (what a ``/health`` request would wait): judging must never
block the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import decoding  # noqa: E402
from server.runtime.judge_pool import answer_judge  # noqa: E402
from server.runtime.settings import Settings  # noqa: E402

SAMPLES = 64
Run = Callable[[], Awaitable[Any]]


def vote_texts(seed: int = 0) -> list[str]:
    """64 samples as a math question's vote sees them: mostly plain numbers, some fractions,
    a few LaTeX answers (three distinct formulas), and a few with no answer."""
    rng = random.Random(seed)
    styles = (
        ["So the total is {n}. The answer is {n}."] * 30
        + ["Step by step we get {n}\n#### {n}"] * 10
        + ["Half of it: the answer is {n}/2."] * 8
        + ["Answer: 3/4"] * 4
        + ["Thus \\boxed{{\\frac{{3}}{{4}}}}", "So \\boxed{{\\sqrt{{8}}}}"] * 2
        + ["Hence \\boxed{{2\\sqrt{{2}}}}", "We get \\boxed{{\\dfrac{{6}}{{8}}}}"]
        + ["I am not sure how to finish this."] * 6
    )
    assert len(styles) == SAMPLES
    texts = []
    for style in styles:
        body = " ".join(
            rng.choice(["we", "add", "the", "two", "terms", "again"]) for _ in range(60)
        )
        texts.append(f"{body}\n{style.format(n=rng.choice([42, 42, 42, 41, 40]))}")
    rng.shuffle(texts)
    return texts


def load_before(base: str, into: Path) -> ModuleType:
    """The ``decoding`` package of commit ``base``, importable as ``decoding_before``."""
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", base, "decoding/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    package = into / "decoding_before"
    package.mkdir()
    for name in names:
        source = subprocess.run(
            ["git", "show", f"{base}:{name}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        text = source.replace("from decoding.", "from decoding_before.")
        (package / Path(name).name).write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("decoding_before")


class InstantEngine:
    """Returns the vote's 64 texts at once, built with the given package's types."""

    def __init__(self, package: ModuleType, texts: list[str]) -> None:
        self.package = package
        self.texts = texts

    @property
    def info(self) -> Any:
        return self.package.EngineInfo(
            model="bench", max_model_len=4096, engine="instant", version="0"
        )

    def generate(self, prompt: Any, spec: Any, *, stream: bool) -> AsyncIterator[Any]:
        return self._chunks(spec.n)

    async def _chunks(self, n: int) -> AsyncIterator[Any]:
        deltas = [
            self.package.SampleDelta(
                index=i,
                text=self.texts[i % len(self.texts)],
                token_count=70,
                logprobs=[self.package.TokenLogprob("x", -0.5)],
                finish_reason="stop",
            )
            for i in range(n)
        ]
        yield self.package.GenerationChunk(prompt_tokens=10, deltas=deltas)


def vote_with(package: ModuleType, texts: list[str], **kwargs: Any) -> Run:
    """One 64-sample precise vote with ``package``'s self-consistency (instant engine)."""
    engine = InstantEngine(package, texts)
    prompt = package.TextPrompt("What is 6 * 7?")
    spec = package.SamplingSpec(temperature=0.7, seed=1)
    plan = package.ConsistencyPlan(samples=SAMPLES)

    def run() -> Awaitable[Any]:
        return package.self_consistency(engine, prompt, spec, plan, **kwargs)

    return run


async def probe(lags: list[float], stop: asyncio.Event) -> None:
    """Wake every millisecond and record how late each wake-up was."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.001
        await asyncio.sleep(0.001)
        lags.append(max(0.0, loop.time() - due))


async def timed(run: Run, lags: list[float]) -> float:
    """Seconds one vote takes, with the loop probe running alongside."""
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(lags, stop))
    started = time.perf_counter()
    await run()
    took = time.perf_counter() - started
    stop.set()
    await prober
    return took


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def main(args: argparse.Namespace) -> None:
    texts = vote_texts()
    pool = answer_judge(Settings())  # the server's defaults
    await pool.start()
    with tempfile.TemporaryDirectory() as folder:
        before_pkg = load_before(args.base, Path(folder))
        runs = {
            "before": vote_with(before_pkg, texts),
            "after": vote_with(decoding, texts, judge=pool),
        }
        outcomes = {name: await run() for name, run in runs.items()}  # warm both
        assert outcomes["before"].answer == outcomes["after"].answer == "42"
        times: dict[str, list[float]] = {name: [] for name in runs}
        lags: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.votes):
            for name, run in runs.items():
                times[name].append(await timed(run, lags[name]))
    await pool.stop()

    print(f"{args.votes} votes of {SAMPLES} samples each; base {args.base}")
    print(f"{'':8}{'p50 ms':>9}{'p99 ms':>9}{'loop lag p50 ms':>17}{'p99':>8}{'max':>8}")
    for name in runs:
        t, lag = times[name], lags[name]
        print(
            f"{name:8}{percentile(t, 0.5) * 1e3:9.2f}{percentile(t, 0.99) * 1e3:9.2f}"
            f"{percentile(lag, 0.5) * 1e3:17.2f}{percentile(lag, 0.99) * 1e3:8.2f}"
            f"{max(lag) * 1e3:8.2f}"
        )
    ratio = percentile(times["after"], 0.5) / percentile(times["before"], 0.5)
    print(f"ratio after / before, p50: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--votes", type=int, default=200, help="votes per side")
    parser.add_argument("--base", default="8ee0b74", help="the commit judged BEFORE")
    asyncio.run(main(parser.parse_args()))
