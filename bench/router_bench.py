"""Latency added by vllm-router, and by Quorum in front of it, measured side by side in one run.

    .venv/bin/python -m bench.router_bench [--model embedded|tiny] [--rounds 7] [--max-tokens 64]

(from the repository root: ``-m`` puts it on the path, for the process fixtures of tests/e2e).
Starts vLLM's own OpenAI server on one model, vllm-router in front of it, and
``quorum serve --upstream`` in front of the router, all on loopback. Then, round by round, sends
the same greedy chat request to each system in turn: straight to vLLM, through the router,
through Quorum and the router; 1.5 s apart, so one system's work does not spill into the next
one's timing. Prints median latencies and their ratios, for a long answer and for one token
(where the hops' own cost is the largest share).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from modelprep.embedded import DEFAULT_MODEL_NAME, default_cache_dir, prepare_embedded_model
from modelprep.tiny import build_tiny_model
from tests.e2e.conftest import TINY
from tests.e2e.router_fixtures import RouterProcess, quorum_over, stop_quorum
from tests.e2e.upstream_fixtures import VllmReplica

PAUSE_S = 1.5
PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def timed(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, int]:
    """Seconds for one whole chat completion, and its completion tokens."""
    start = time.perf_counter()
    response = client.post(f"{url}/v1/chat/completions", json=body)
    seconds = time.perf_counter() - start
    response.raise_for_status()
    return seconds, int(response.json()["usage"]["completion_tokens"])


def measure(systems: dict[str, str], model: str, args: argparse.Namespace) -> None:
    """Round-robin over systems and sizes; print medians and ratios."""
    sizes = {f"{args.max_tokens} tokens": args.max_tokens, "1 token": 1}
    times: dict[tuple[str, str], list[float]] = {(s, k): [] for s in systems for k in sizes}
    tokens: dict[tuple[str, str], set[int]] = {(s, k): set() for s in systems for k in sizes}
    with httpx.Client(timeout=300) as client:
        for url in systems.values():  # warm every hop's connections and the engine
            timed(client, url, {"model": model, "messages": PROMPT, "max_tokens": 4})
        for _ in range(args.rounds):
            for name, url in systems.items():
                time.sleep(PAUSE_S)
                for size, max_tokens in sizes.items():
                    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens,
                            "temperature": 0}  # fmt: skip
                    seconds, count = timed(client, url, body)
                    times[name, size].append(seconds)
                    tokens[name, size].add(count)
    direct, router, quorum = systems
    print(f"\nmodel {model}, {args.rounds} rounds, medians (completion tokens in brackets)")
    for size in sizes:
        p50 = {s: statistics.median(times[s, size]) for s in systems}
        print(f"  {size}:")
        for name in systems:
            print(f"    {name:<22} {p50[name] * 1000:8.1f} ms  {sorted(tokens[name, size])}")
        print(f"    router / direct        {p50[router] / p50[direct]:6.3f}x")
        print(f"    quorum+router / router {p50[quorum] / p50[router]:6.3f}x")
        print(f"    quorum+router / direct {p50[quorum] / p50[direct]:6.3f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["embedded", "tiny"], default="embedded")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    cache = default_cache_dir()
    if args.model == "embedded":
        folder, name, context = prepare_embedded_model(cache), DEFAULT_MODEL_NAME, 1024
    else:
        folder, name, context = build_tiny_model(cache / "test-models" / "tiny-llama"), TINY, 512
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        run_dir = Path(tmp)
        replica = VllmReplica(folder, run_dir, 0, served_name=name, max_model_len=context)
        try:
            print(f"vLLM ready in {replica.wait_ready():.1f} s")
            router = RouterProcess([replica.url], run_dir)
            try:
                quorum = quorum_over(router, run_dir, "quorum")
                try:
                    systems = {
                        "vLLM direct": replica.url,
                        "vllm-router": router.url,
                        "Quorum -> vllm-router": quorum.base_url,
                    }
                    measure(systems, name, args)
                finally:
                    stop_quorum(quorum)
            finally:
                router.stop()
        finally:
            replica.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
