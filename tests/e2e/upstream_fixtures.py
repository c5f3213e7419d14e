"""Two real vLLM OpenAI servers on the tiny model, and ``quorum serve --upstream`` in front.

Both replicas share the machine's cores (slow but faithful: vLLM's own server, as deployed).
Every process runs in its own process group, and each group is gone when the session ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelprep.embedded import default_cache_dir
from modelprep.tiny import build_tiny_model
from tests.e2e.conftest import TINY
from tests.e2e.server_process import ServerProcess, free_port

REPLICA_START_TIMEOUT_S = 300.0
REPLICA_MAX_MODEL_LEN = 512


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


class VllmReplica:
    """vLLM's own OpenAI server (``python -m vllm.entrypoints.openai.api_server``) on loopback."""

    def __init__(
        self,
        model: Path,
        run_dir: Path,
        index: int,
        port: int | None = None,
        *,
        served_name: str = TINY,
        max_model_len: int = REPLICA_MAX_MODEL_LEN,
    ) -> None:
        self.model, self.run_dir, self.index = model, run_dir, index
        self.served_name, self.max_model_len = served_name, max_model_len
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = run_dir / f"replica-{index}.log"
        self.started_s = 0.0
        self._launch()

    def _launch(self) -> None:
        temp = self.run_dir / f"replica-{self.index}-tmp"
        temp.mkdir(exist_ok=True)
        cache = default_cache_dir()
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_CPU_OMP_THREADS_BIND": "0-1",
            "HF_HUB_OFFLINE": "1",
            "TMPDIR": str(temp),
            "VLLM_CACHE_ROOT": str(cache / "vllm"),
            "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
        }
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model), "--served-model-name", self.served_name,
            "--dtype", "float32", "--enforce-eager",
            "--max-model-len", str(self.max_model_len),
            "--host", "127.0.0.1", "--port", str(self.port),
            # Per-request seeds with chunked prefill kill the CPU engine (vLLM 0.32:
            # "CPU Generator does not use offset").
            "--no-enable-chunked-prefill",
        ]  # fmt: skip
        self._log = self.log_path.open("ab")
        self._start = time.monotonic()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait_ready(self) -> float:
        """Poll until the server lists its model; returns seconds since launch."""
        deadline = self._start + REPLICA_START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"replica {self.index} exited:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/v1/models").status_code == 200:
                        self.started_s = time.monotonic() - self._start
                        return self.started_s
                except httpx.TransportError:
                    pass
                time.sleep(0.5)  # polling for readiness, not synchronising test steps
        raise RuntimeError(f"replica {self.index} not ready:\n{self.log_tail()}")

    def restart(self) -> float:
        """Start again on the same port (after ``kill``), and wait until ready."""
        self._launch()
        return self.wait_ready()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus metric's samples whose labels include ``labels``."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        """SIGKILL the whole group: the replica dies mid-request, as a crashed node would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._wait_group_gone(15.0)
        self._log.close()

    def stop(self) -> None:
        """SIGTERM (vLLM shuts its engine down); SIGKILL the group if anything lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self._wait_group_gone(15.0):
            os.killpg(self.process.pid, signal.SIGKILL)
            self._wait_group_gone(15.0)
        if not self._log.closed:
            self._log.close()

    def _wait_group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while group_members(self.process.pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def log_tail(self, lines: int = 30) -> str:
        """The end of the replica's log, for failure messages."""
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session", name="vllm_replicas")
def vllm_replicas_fixture(run_dir: Path) -> Iterator[list[VllmReplica]]:
    """Two vLLM servers on the tiny model, started together; stopped at the session's end."""
    model = build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")
    replicas = [VllmReplica(model, run_dir, i) for i in range(2)]
    try:
        for replica in replicas:
            replica.wait_ready()
        print(
            "\n[e2e] vLLM replicas ready in "
            + ", ".join(f"{r.started_s:.1f} s" for r in replicas)
            + " (started together)"
        )
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
        assert not any(group_members(r.process.pid) for r in replicas), "replica leftovers"


@pytest.fixture(scope="session", name="upstream_server")
def upstream_server_fixture(
    vllm_replicas: list[VllmReplica], run_dir: Path
) -> Iterator[ServerProcess]:
    """``quorum serve`` in front of both replicas; the name and context come from them."""
    args = [arg for r in vllm_replicas for arg in ("--upstream", f"{r.url}/v1")]
    server = ServerProcess(
        [*args, "--upstream-health-interval-s", "1"],
        run_dir / "quorum-upstream.log",
        env={"TMPDIR": str(run_dir)},
    )
    print(f"\n[e2e] quorum over upstreams ready in {server.started_s:.1f} s")
    yield server
    code = server.stop()
    assert code == 0, f"quorum did not exit cleanly ({code}):\n{server.log_tail()}"
    assert not server.live_group_members(), "quorum left processes behind"
