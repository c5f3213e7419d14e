"""vLLM's own router (``vllm-router``, PyPI) in front of real vLLM replicas, and ``quorum serve``
in front of the router: topology (b) on loopback, process for process.

The tiny-model replicas are the session's (``upstream_fixtures.vllm_replicas``, shared with
``test_upstream.py``); the router and the Quorum in front of it live for one test module. Every
process runs in its own process group, and each group is gone when its fixture ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from modelprep.embedded import DEFAULT_MODEL_NAME, default_cache_dir, prepare_embedded_model
from tests.e2e.server_process import ServerProcess, free_port
from tests.e2e.upstream_fixtures import VllmReplica, group_members

ROUTER_START_TIMEOUT_S = 120.0
# The router's defaults notice a dead worker after 3 failed probes 60 s apart and take a restarted
# one back after 2 good ones: minutes. A probe a second, one failure out and one success back.
ROUTER_HEALTH_ARGS = [
    "--health-check-interval-secs", "1",
    "--health-failure-threshold", "1",
    "--health-success-threshold", "1",
]  # fmt: skip


def router_command() -> str:
    """The ``vllm-router`` console script next to this interpreter (the dev extra)."""
    local = Path(sys.executable).parent / "vllm-router"
    found = str(local) if local.is_file() else shutil.which("vllm-router")
    if found is None:
        pytest.fail("vllm-router is missing: install the dev extra (pip install -e '.[dev]')")
    return found


def quorum_args(router: RouterProcess) -> list[str]:
    """``quorum serve`` flags for one router upstream: its readiness (200 while any worker is
    healthy; its /health is 503 while any one is down), probed every second."""
    return [
        "--upstream", f"{router.url}/v1",
        "--upstream-health-path", "/readiness",
        "--upstream-health-interval-s", "1",
    ]  # fmt: skip


class RouterProcess:
    """``vllm-router`` on loopback; stopped and started again on the same port."""

    def __init__(self, workers: list[str], run_dir: Path, *, policy: str = "cache_aware") -> None:
        self.workers, self.policy = workers, policy
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = run_dir / f"router-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_s = self.start()

    def start(self) -> float:
        """Launch, and wait until it routes (it waits for a healthy worker first)."""
        command = [
            router_command(),
            "--worker-urls", *self.workers,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--policy", self.policy,
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(self.metrics_port),
            *ROUTER_HEALTH_ARGS,
        ]  # fmt: skip
        start = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
                start_new_session=True,
            )
        deadline = start + ROUTER_START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"vllm-router exited:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/readiness").status_code == 200:
                        return time.monotonic() - start
                except httpx.TransportError:
                    pass
                time.sleep(0.2)  # polling for readiness, not synchronising test steps
        raise RuntimeError(f"vllm-router not ready:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the group if it lingers; returns once the group is gone."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        deadline = time.monotonic() + 15
        while group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_members(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        self.process = None

    def healthy_workers(self) -> set[str]:
        """The workers the router itself considers healthy (its /workers listing)."""
        listing = httpx.get(f"{self.url}/workers", timeout=5).json()
        return {w["url"] for w in listing["workers"] if w["is_healthy"]}

    def log_tail(self, lines: int = 30) -> str:
        """The end of the router's log, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def quorum_over(router: RouterProcess, run_dir: Path, name: str) -> ServerProcess:
    """``quorum serve`` with the router as its one upstream."""
    return ServerProcess(quorum_args(router), run_dir / f"{name}.log", env={"TMPDIR": str(run_dir)})


def stop_quorum(server: ServerProcess) -> None:
    """SIGTERM, and check it exited cleanly and left nothing behind."""
    code = server.stop()
    assert code == 0, f"quorum did not exit cleanly ({code}):\n{server.log_tail()}"
    assert server.wait_group_gone(15.0), "quorum left processes behind"


@pytest.fixture(scope="module", name="router")
def router_fixture(vllm_replicas: list[VllmReplica], run_dir: Path) -> Iterator[RouterProcess]:
    """vllm-router (cache-aware, its default policy) over the session's two replicas."""
    router = RouterProcess([r.url for r in vllm_replicas], run_dir)
    print(f"\n[e2e] vllm-router ready in {router.started_s:.1f} s")
    yield router
    router.stop()


@pytest.fixture(scope="module", name="router_quorum")
def router_quorum_fixture(router: RouterProcess, run_dir: Path) -> Iterator[ServerProcess]:
    """``quorum serve`` in front of the router; name and context come through it."""
    server = quorum_over(router, run_dir, "quorum-over-router")
    print(f"\n[e2e] quorum over vllm-router ready in {server.started_s:.1f} s")
    yield server
    stop_quorum(server)


@pytest.fixture(name="embedded_router_quorum")
def embedded_router_quorum_fixture(run_dir: Path) -> Iterator[ServerProcess]:
    """One vLLM replica on the embedded model behind a router, and Quorum in front: started
    and stopped around one test, before the session's replicas exist (two at most at once)."""
    model = prepare_embedded_model(default_cache_dir())
    with ExitStack() as stack:
        replica = VllmReplica(model, run_dir, 9, served_name=DEFAULT_MODEL_NAME, max_model_len=1024)
        stack.callback(replica.stop)
        print(f"\n[e2e] embedded-model replica ready in {replica.wait_ready():.1f} s")
        router = RouterProcess([replica.url], run_dir)
        stack.callback(router.stop)
        server = quorum_over(router, run_dir, "quorum-over-router-embedded")
        stack.callback(stop_quorum, server)
        yield server
