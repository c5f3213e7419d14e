"""A bounded load test at about twice the configured capacity, on loopback, stopping by itself.

    .venv/bin/python bench/load.py --spawn tiny      # a real `quorum serve` on a tiny random Llama
    .venv/bin/python bench/load.py --spawn scripted  # the paced scripted engine (no model)
    .venv/bin/python bench/load.py --url http://127.0.0.1:8000 --capacity 256
    # a retry storm (clients retry at once) against a 0.1 s back-off, old code against new:
    .venv/bin/python bench/load.py --spawn tiny --backoff 0 0.1 --server-root OLD --server-root .
    # the same with the engine on core 0, the server and (niced) load generator on the rest:
    .venv/bin/python bench/load.py --spawn tiny --backoff 0 0.1 --repeat 3 --pin 0

An asyncio driver keeps ``2 x capacity`` chat requests (n=1 each) in flight for ``--duration``
seconds, then checks that the server serves normally again (a request succeeds and no samples
stay admitted). It prints p50/p99 latency of the successes and of every answer, and the mix of
statuses: under overload the only errors allowed are 429 and 503, each answered at once. With
several ``--backoff`` values (0: a refused client retries at once) and ``--server-root``
checkouts (spawned one at a time), it ends with a table of successful requests per second side
by side. ``tests/reliability/test_processes.py`` runs a short smoke variant of the same driver.

``--pin CORES`` gives the spawned server's vLLM engine those cores (``VLLM_CPU_OMP_THREADS_BIND``)
and ``--server-cores`` (default: the other cores) the HTTP server's process (``taskset``); this
load generator runs on the cores neither uses, or, if there are none, on the server's at the
lowest priority (nice 19). Two layouts of a 2-core machine, both to keep the generator's own CPU
(httpx, about 1 ms per request) off the engine's cores, which a storm of instant retries would
otherwise measure as much as the server:

- ``--pin 0``: the engine alone on core 0 (vLLM's CPU docs reserve cores for the front end);
  server and (niced) clients share core 1;
- ``--pin 0 --server-cores 0``: server and engine on core 0, the clients alone on core 1, the
  nearest this machine gets to clients on another machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ALLOWED_ERRORS = frozenset({429, 503})


@dataclass
class LoadReport:
    """What the server answered, and how fast."""

    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    ok_latencies: list[float] = field(default_factory=list)
    error_latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0  # what the load generator itself used of the machine

    @property
    def ok_per_s(self) -> float:
        """Successful requests per second."""
        return self.statuses[200] / max(self.elapsed_s, 1e-9)

    @property
    def total(self) -> int:
        """Requests sent."""
        return sum(self.statuses.values()) + sum(self.transport_errors.values())

    @property
    def unexpected(self) -> dict[str, int]:
        """Outcomes other than 200, 429 and 503."""
        bad = {str(s): c for s, c in self.statuses.items() if s != 200 and s not in ALLOWED_ERRORS}
        return {**bad, **self.transport_errors}

    def summary(self) -> str:
        """Human-readable results."""
        lines = [
            f"requests {self.total} in {self.elapsed_s:.1f} s "
            f"({self.total / max(self.elapsed_s, 1e-9):.1f}/s)",
            "status mix: " + ", ".join(f"{s}: {c}" for s, c in sorted(self.statuses.items())),
        ]
        if self.transport_errors:
            lines.append(f"transport errors: {dict(self.transport_errors)}")
        for name, values in (("200", self.ok_latencies), ("429/503", self.error_latencies)):
            if values:
                lines.append(
                    f"latency {name}: p50 {percentile(values, 50) * 1000:.0f} ms, "
                    f"p99 {percentile(values, 99) * 1000:.0f} ms, n={len(values)}"
                )
        return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def chat_body(model: str, max_tokens: int, prompt: str) -> dict[str, Any]:
    """One request of the load: n=1, fixed length."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.8,
    }


async def run_load(
    base_url: str,
    body: dict[str, Any],
    *,
    concurrency: int,
    duration_s: float | None = None,
    requests: int | None = None,
    api_key: str | None = None,
    timeout_s: float = 120.0,
    backoff_s: float = 0.0,
) -> LoadReport:
    """Keep ``concurrency`` requests in flight until ``duration_s`` passed or ``requests`` were
    sent, whichever comes first; a refused client waits ``backoff_s`` before its next try
    (0: clients that hammer)."""
    if duration_s is None and requests is None:
        raise ValueError("give a duration or a request count: the load must stop by itself")
    report = LoadReport()
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    start = time.perf_counter()
    cpu_start = time.process_time()
    deadline = None if duration_s is None else start + duration_s
    budget = [requests if requests is not None else sys.maxsize]

    async def worker(client: httpx.AsyncClient) -> None:
        while budget[0] > 0 and (deadline is None or time.perf_counter() < deadline):
            budget[0] -= 1
            began = time.perf_counter()
            try:
                response = await client.post("/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                report.transport_errors[type(exc).__name__] += 1
                continue
            took = time.perf_counter() - began
            report.statuses[response.status_code] += 1
            if response.status_code == 200:
                report.ok_latencies.append(took)
            else:
                report.error_latencies.append(took)
                if backoff_s > 0:
                    await asyncio.sleep(backoff_s)

    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=timeout_s
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    report.elapsed_s = time.perf_counter() - start
    report.client_cpu_s = time.process_time() - cpu_start
    return report


async def serves_normally(base_url: str, body: dict[str, Any], api_key: str | None = None) -> bool:
    """After the load: a request succeeds and nothing stays admitted."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        ok = (await client.post("/v1/chat/completions", json=body)).status_code == 200
        metrics = (await client.get("/metrics")).text
    admitted = [line for line in metrics.splitlines() if line.startswith("quorum_admitted_samples")]
    return ok and admitted == ["quorum_admitted_samples 0.0"]


def parse_cores(text: str) -> set[int]:
    """``"0"``, ``"0-1"`` or ``"0,2-3"`` as a set of core numbers."""
    cores: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cores.update(range(int(low), int(high or low) + 1))
    return cores


def other_cores(used: set[int]) -> set[int]:
    """The machine's cores outside ``used``."""
    return set(range(os.cpu_count() or 1)) - used


def as_list(cores: set[int]) -> str:
    """A set of cores as a taskset list."""
    return ",".join(map(str, sorted(cores)))


def server_cores(args: argparse.Namespace) -> set[int]:
    """The HTTP server's cores: ``--server-cores``, else those the engine does not use."""
    if args.server_cores is not None:
        return parse_cores(args.server_cores)
    rest = other_cores(parse_cores(args.pin))
    if not rest:
        raise SystemExit("--pin must leave a core for the server, or give --server-cores")
    return rest


def pin_client(engine: set[int], server: set[int]) -> None:
    """Put this load generator on the cores nobody else uses, else niced on the server's."""
    free = other_cores(engine | server)
    os.sched_setaffinity(0, free or server)
    if not free:
        os.nice(19)


def spawn(
    kind: str,
    capacity: int,
    port: int,
    log: Path,
    root: Path | None = None,
    pin: tuple[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``quorum serve`` on loopback, on the tiny model or the paced scripted engine, from
    the checkout ``root`` (default: the installed one); ``pin``: (the engine's cores, the
    server's), as taskset lists."""
    env = dict(os.environ)
    prefix = [] if pin is None else ["taskset", "--cpu-list", pin[1]]
    if pin is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = pin[0]
    args = [
        *prefix,
        sys.executable,
        "-m",
        "quorum.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-inflight-samples",
        str(capacity),
        "--max-model-len",
        "512",
    ]
    if kind == "tiny":
        from modelprep.embedded import default_cache_dir
        from modelprep.tiny import build_tiny_model

        model = build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")
        args += ["--model", str(model), "--served-name", "tiny-llama"]
    else:
        env.update(QUORUM_TEST_ENGINE="scripted", QUORUM_TEST_TOKEN_DELAY_MS="20")
        args += ["--served-name", "tiny-llama"]
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout_s: float = 420) -> None:
    """Poll /ready until the server serves."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited during start")
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


@dataclass
class Run:
    """One load run: which code, which back-off, what came back."""

    code: str
    backoff_s: float
    report: LoadReport
    healthy: bool
    server_cpu_s: float | None = None  # the HTTP server's process (not the engine's)


def process_cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far (user + system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_runs(
    args: argparse.Namespace,
    base_url: str,
    code: str,
    body: dict[str, Any],
    server_pid: int | None = None,
) -> list[Run]:
    """One run per back-off against one server, each followed by the serves-normally check."""
    concurrency = max(1, round(args.capacity * args.factor))
    runs = []
    for backoff in args.backoff * args.repeat:  # alternated, so a busy spell hits both
        server_cpu = None if server_pid is None else process_cpu_s(server_pid)
        print(
            f"load: {concurrency} concurrent clients for {args.duration:.0f} s against a "
            f"capacity of {args.capacity} samples, back-off {backoff:g} s ({code})"
        )
        report = asyncio.run(
            run_load(
                base_url,
                body,
                concurrency=concurrency,
                duration_s=args.duration,
                api_key=args.api_key,
                backoff_s=backoff,
            )
        )
        if server_pid is not None and server_cpu is not None:
            server_cpu = process_cpu_s(server_pid) - server_cpu
        print(report.summary())
        healthy = asyncio.run(serves_normally(base_url, body, args.api_key))
        print(f"serves normally afterwards: {healthy}")
        runs.append(Run(code, backoff, report, healthy, server_cpu))
    return runs


def spawned_runs(args: argparse.Namespace, root: Path | None, body: dict[str, Any]) -> list[Run]:
    """Start a server from ``root``, run the loads, stop it (exit code printed)."""
    port = 18_000 + os.getpid() % 1000
    base_url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.gettempdir()) / f"quorum-load-{port}.log"
    pin = None if args.pin is None else (args.pin, as_list(server_cores(args)))
    process = spawn(args.spawn, args.capacity, port, log, root, pin)
    print(f"server log: {log}")
    try:
        wait_ready(base_url, process)
        return load_runs(args, base_url, str(root or Path.cwd()), body, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        print(f"server exit code: {process.wait(120)}")


def side_by_side(runs: list[Run]) -> str:
    """Successful requests per second for each code and back-off, and the storm's ratio."""
    lines = [
        f"{'code':<32} {'back-off':>8} {'200/s':>7} {'429/s':>7} {'client CPU':>10} "
        f"{'server CPU':>10}"
    ]
    for run in runs:
        elapsed = max(run.report.elapsed_s, 1e-9)
        refused = run.report.statuses[429] / elapsed
        server = "-" if run.server_cpu_s is None else f"{run.server_cpu_s / elapsed:.0%}"
        lines.append(
            f"{run.code[-32:]:<32} {run.backoff_s:>7g}s {run.report.ok_per_s:>7.1f} "
            f"{refused:>7.1f} {run.report.client_cpu_s / elapsed:>10.0%} {server:>10}"
        )
    for code in dict.fromkeys(run.code for run in runs):
        rates: dict[float, list[float]] = {}
        for run in runs:
            if run.code == code:
                rates.setdefault(run.backoff_s, []).append(run.report.ok_per_s)
        if 0 in rates and len(rates) > 1:
            calm = max(rates)
            storm, steady = statistics.median(rates[0]), statistics.median(rates[calm])
            lines.append(
                f"{code[-32:]}: median 200/s retrying at once / with a {calm:g} s back-off = "
                f"{storm:.1f} / {steady:.1f} = {storm / max(steady, 1e-9):.2f}"
            )
    return "\n".join(lines)


def main() -> int:
    """Run the load, print the report; non-zero if anything but 200/429/503 came back."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server")
    target.add_argument("--spawn", choices=["tiny", "scripted"], help="start one on loopback")
    parser.add_argument("--capacity", type=int, default=8, help="the server's sample cap")
    parser.add_argument("--factor", type=float, default=2.0, help="concurrency / capacity")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument(
        "--backoff",
        type=float,
        nargs="+",
        default=[0.1],
        help="wait after a 429/503 (s); 0: retry at once; several: one run each",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each back-off")
    parser.add_argument(
        "--server-root",
        type=Path,
        action="append",
        help="with --spawn: a checkout to run the server from (repeat to compare; one at a time)",
    )
    parser.add_argument(
        "--pin",
        help="with --spawn: the engine's cores (e.g. 0); see --server-cores",
    )
    parser.add_argument("--server-cores", help="with --pin: the HTTP server's cores")
    parser.add_argument("--model", default="tiny-llama")
    parser.add_argument("--api-key", default=os.environ.get("QUORUM_BENCH_API_KEY"))
    args = parser.parse_args()

    body = chat_body(args.model, args.max_tokens, "Tell me about the sea in one line.")
    runs: list[Run] = []
    if args.pin is not None:
        if not args.spawn:
            parser.error("--pin needs --spawn")
        pin_client(parse_cores(args.pin), server_cores(args))
    if args.spawn:
        for index, root in enumerate(args.server_root or [None]):
            if index:
                time.sleep(1.5)  # let the last engine's processes go before the next starts
            runs += spawned_runs(args, root, body)
    else:
        runs = load_runs(args, args.url, args.url, body)
    if len(runs) > 1:
        print(side_by_side(runs))
    unexpected = {run.code: run.report.unexpected for run in runs if run.report.unexpected}
    if unexpected:
        print(f"unexpected outcomes: {unexpected}")
    return 0 if all(run.healthy for run in runs) and not unexpected else 1


if __name__ == "__main__":
    sys.exit(main())
