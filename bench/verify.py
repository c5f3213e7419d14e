"""What verified voting costs: the sandbox per candidate, a vote's checks, /health meanwhile.

    .venv/bin/python bench/verify.py [--runs 30]

1. Per candidate, sequentially: a bare ``python -I -S -B -c pass`` (the floor: starting an
   interpreter) against ``run_candidate`` on a correct two-test candidate (namespaces, mounts,
   limits, the harness, the report), so the difference is the sandbox's own overhead.
2. A vote's checks: 8 distinct candidates through the code runner pool (default settings: 2
   workers), wall time per vote.
3. /health latency, in-process on a scripted engine: idle, then while a precise request's
   hostile candidates (an infinite loop, a fork bomb, a memory hog, ...) are being run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decoding.verification import CodeSuite  # noqa: E402
from server.runtime.sandbox import SandboxLimits, isolation, run_candidate  # noqa: E402
from server.runtime.settings import Settings  # noqa: E402
from server.runtime.verifier import SandboxVerifier, code_runner  # noqa: E402

SUITE = CodeSuite(
    tests=({"args": [1, 2], "expected": 3}, "assert add(-1, 1) == 0"), entry_point="add"
)
RIGHT = "def add(a, b):\n    return a + b\n"
HOSTILE = [
    "def add(a, b):\n    while True:\n        pass\n",
    "import os\ndef add(a, b):\n    while True:\n        os.fork()\n",
    "def add(a, b):\n    x = bytearray(2**34)\n",
    "def add(a, b):\n    open('/etc/passwd', 'a').write('x')\n",
    "import socket\ndef add(a, b):\n    socket.create_connection(('1.1.1.1', 80), 1)\n",
    "import os\ndef add(a, b):\n    os.kill(os.getppid(), 9)\n    return a + b\n",
]


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"


def per_candidate(runs: int) -> None:
    floor, sandboxed = [], []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-B", "-c", "pass"], check=True)
        floor.append(time.perf_counter() - start)
        start = time.perf_counter()
        check = run_candidate(RIGHT, SUITE, SandboxLimits())
        sandboxed.append(time.perf_counter() - start)
        assert check.verified, check
    print(f"isolation: {isolation()}")
    print(f"bare interpreter start    {percentiles(floor)}")
    print(f"sandboxed candidate       {percentiles(sandboxed)}")
    overhead = statistics.median(sandboxed) - statistics.median(floor)
    print(f"sandbox overhead (p50)    {overhead * 1000:7.1f} ms per candidate")


async def vote_checks(settings: Settings, votes: int) -> None:
    runner = code_runner(settings)
    await runner.start()
    try:
        verifier = SandboxVerifier(runner, judge=None, settings=settings)  # type: ignore[arg-type]
        times = []
        for _ in range(votes):
            answers = [RIGHT.replace("a + b", f"a + b + {i} - {i}") for i in range(8)]
            start = time.perf_counter()
            checks = await verifier.check(SUITE, answers)
            times.append(time.perf_counter() - start)
            assert all(c.verified for c in checks)
        print(f"8 candidates, {settings.verify_workers} workers  {percentiles(times)} per vote")
    finally:
        await runner.stop()


async def health_during_hostile(settings: Settings, probes: int) -> None:
    import httpx

    from server.api.app import create_app
    from server.engines.scripted import ScriptedEngine

    texts = [f"```python\n{code}```" for code in [*HOSTILE, RIGHT]]
    engine = ScriptedEngine(script=lambda p, s, i: texts[i % len(texts)], max_model_len=4096)
    app = create_app(settings, engine)
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "add"}],
        "samples": len(texts),
        "answer_format": "code",
        "verify": {"tests": list(SUITE.tests), "entry_point": "add", "timeout_s": 3},
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://q") as http:
            idle = [await _timed_health(http) for _ in range(probes)]
            request = asyncio.ensure_future(http.post("/v1/precise", json=body))
            busy = []
            while not request.done():
                busy.append(await _timed_health(http))
                await asyncio.sleep(0.01)
            result = (await request).json()
    print(f"/health idle              {percentiles(idle)}  ({len(idle)} probes)")
    print(f"/health, hostile vote on  {percentiles(busy)}  ({len(busy)} probes)")
    print(f"  hostile vote: winner_verified={result['winner_verified']}, reasons:")
    for sample in result["samples"]:
        print(f"    {sample['verified']!s:5} {sample['verify_reason']}")


async def _timed_health(http: Any) -> float:
    start = time.perf_counter()
    response = await http.get("/health")
    assert response.status_code == 200
    return float(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings(served_name="bench", cache_dir=Path(cache), max_model_len=4096)
        per_candidate(args.runs)
        asyncio.run(vote_checks(settings, max(3, args.runs // 3)))
        asyncio.run(health_during_hostile(settings, args.runs))


if __name__ == "__main__":
    main()
