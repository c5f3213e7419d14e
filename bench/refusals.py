"""What a refusal costs the server: CPU per 429 when it is full, old code against new.

    .venv/bin/python -m bench.refusals --server-root OLD --server-root . [--body-kib 1 64 1000]

Starts ``quorum serve`` on the paced scripted engine (no model) from each checkout in turn,
fills its one sample of capacity with a request that lasts, then sends ``--requests`` chat
requests over one keep-alive socket (reopened when the server closes it) and reads the server
process's CPU time from /proc before and after. A bare-socket client and CPU time rather than
wall time: on a shared machine, what the server spends is what the figure should show, not
what the client or the neighbours spend. Checkouts alternate for ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.load import process_cpu_s, wait_ready

HOLD = {"model": "m", "messages": [{"role": "user", "content": "hold " * 50}], "stream": True}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(body_bytes: int) -> bytes:
    """A chat request whose JSON body is about ``body_bytes`` long."""
    text = "x" * max(body_bytes - 80, 1)
    payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def answer(sock: socket.socket) -> tuple[int, bool]:
    """Read one response; its status and whether the server closes the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").lower().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.startswith("content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), "connection: close" in lines


def cpu_per_refusal(root: Path, sizes: list[int], requests: int) -> dict[int, float]:
    """Milliseconds of server CPU per refusal, for each body size, on a server from ``root``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "QUORUM_TEST_ENGINE": "scripted", "QUORUM_TEST_TOKEN_DELAY_MS": "1000"}
    args = [sys.executable, "-m", "quorum.cli", "serve", "--port", str(port), "--served-name", "m"]
    args += ["--max-inflight-samples", "1", "--max-model-len", "4096", "--drain-timeout-s", "0"]
    log = Path(tempfile.gettempdir()) / f"quorum-refusals-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(args, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    costs = {}
    try:
        wait_ready(base, server)
        with (
            httpx.Client(base_url=base, timeout=30) as client,
            client.stream("POST", "/v1/chat/completions", json=HOLD),  # 50 s of tokens
        ):
            while "quorum_admitted_samples 1.0" not in client.get("/metrics").text:
                time.sleep(0.05)  # polling for the hold to be admitted
            for size in sizes:
                costs[size] = refusals(port, server.pid, request(size), requests)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return costs


def refusals(port: int, pid: int, message: bytes, count: int) -> float:
    """Server CPU milliseconds per refusal of ``message``, sent ``count`` times."""
    sock: socket.socket | None = None
    before = process_cpu_s(pid)
    for _ in range(count):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(message)
        status, closes = answer(sock)
        if status != 429:
            raise RuntimeError(f"expected 429, got {status}")
        if closes:
            sock.close()
            sock = None
    spent = process_cpu_s(pid) - before
    if sock is not None:
        sock.close()
    return spent / count * 1000


def main() -> int:
    """Alternate the checkouts, print the median CPU per refusal side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server-root", type=Path, action="append", required=True)
    parser.add_argument("--body-kib", type=int, nargs="+", default=[1, 64, 1000])
    parser.add_argument("--requests", type=int, default=1000, help="refusals per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [kib * 1024 for kib in args.body_kib]
    results: dict[Path, list[dict[int, float]]] = {root: [] for root in args.server_root}
    for _ in range(args.rounds):
        for root in args.server_root:
            results[root].append(cpu_per_refusal(root, sizes, args.requests))
    print(f"server CPU per refusal when full, ms (median of {args.rounds} rounds)")
    print(f"{'code':<32}" + "".join(f"{f'{kib} KiB body':>15}" for kib in args.body_kib))
    for root, rounds in results.items():
        medians = [statistics.median(r[size] for r in rounds) for size in sizes]
        print(f"{str(root)[-32:]:<32}" + "".join(f"{m:>15.3f}" for m in medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
