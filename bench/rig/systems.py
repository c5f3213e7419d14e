"""The systems a benchmark compares, started and stopped on loopback by the rig itself.

Each system is a server process (vLLM's own OpenAI server, ``quorum serve`` in-process or in
front of an upstream, optillm) or an address the user gave (``--vllm-url``, ``--quorum-url``).
A system knows which *engine* serves it: two vLLM CPU engines on the same cores slow each
other, so the runner pauses when consecutive requests go to different engines. Every process
runs in its own process group and the whole group is gone when it stops.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 60.0
_LIVE: list[ServerProcess] = []  # started and not stopped yet, for ``stop_all``


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class System:
    """Something that answers OpenAI requests: where, under which model name, on which engine."""

    name: str  # the label in tables: "vllm", "quorum", "quorum-upstream", "optillm"
    base_url: str
    model: str
    engine: str  # which engine process serves it; the runner pauses between engines
    process: ServerProcess | None = None
    started_s: float = 0.0


@dataclass
class ServerProcess:
    """A server on loopback, in its own process group, logging to a file."""

    command: list[str]
    ready_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Launch and poll ``ready_url`` until it answers 200; seconds it took."""
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        _LIVE.append(self)
        deadline = began + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command[:4]} exited early:\n{self.log_tail()}")
                try:
                    if client.get(self.ready_url).status_code == 200:
                        return time.monotonic() - began
                except httpx.TransportError:
                    pass
                time.sleep(0.5)  # polling for readiness
        self.stop()
        raise RuntimeError(f"not ready after {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the whole group if anything is left after the timeout."""
        process = self.process
        if process is None:
            return
        if self in _LIVE:
            _LIVE.remove(self)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT_S)
        deadline = time.monotonic() + 15.0
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if "TMPDIR" in self.env:
            shutil.rmtree(self.env["TMPDIR"], ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log, for error messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all() -> None:
    """Stop every server still running, newest first (after an interrupt, say)."""
    for server in reversed(list(_LIVE)):
        server.stop()


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process of the group still runs."""
    pids = (int(name) for name in os.listdir("/proc") if name.isdigit())
    return any(_in_group_and_running(pid, pgid) for pid in pids)


def _in_group_and_running(pid: int, pgid: int) -> bool:
    """``pid`` belongs to group ``pgid`` and is not a zombie (False once it is gone)."""
    try:
        if os.getpgid(pid) != pgid:
            return False
        # /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces and parentheses
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def engine_env(cache_dir: Path) -> dict[str, str]:
    """The environment ENGINE-NOTES recommends for a vLLM CPU engine, with private temp files
    in a short path of their own (vLLM's socket paths must stay under 107 characters)."""
    temp = tempfile.mkdtemp(prefix="rig-", dir="/tmp" if Path("/tmp").is_dir() else None)
    cores = os.cpu_count() or 1
    return {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{cores - 1}",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": temp,
        "VLLM_CACHE_ROOT": str(cache_dir / "vllm"),
        "TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor"),
    }


@dataclass(frozen=True)
class Setup:
    """What every started system shares: the model, its name and context, and where logs go."""

    model_dir: Path
    served_name: str
    max_model_len: int
    run_dir: Path
    cache_dir: Path
    quorum_args: tuple[str, ...] = ()  # extra ``quorum serve`` flags (e.g. --deterministic)
    vllm_args: tuple[str, ...] = ()  # extra vLLM server flags


def vllm_server(setup: Setup, label: str = "vllm") -> System:
    """vLLM's own OpenAI server, as PEERS.md runs it (chunked prefill off on the CPU: vLLM
    0.32's CPU engine dies on per-request seeds with it, and Quorum's engine runs without it)."""
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(setup.model_dir), "--served-model-name", setup.served_name,
        "--dtype", "float32", "--enforce-eager", "--max-model-len", str(setup.max_model_len),
        "--host", "127.0.0.1", "--port", str(port), "--no-enable-chunked-prefill",
        *setup.vllm_args,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    process = ServerProcess(
        command,
        f"{url}/v1/models",
        setup.run_dir / f"{label}.log",
        env=engine_env(setup.cache_dir),
    )
    return System(label, url, setup.served_name, engine=label, process=process)


def quorum_server(setup: Setup, upstream: System | None = None, label: str = "") -> System:
    """``quorum serve``: in-process on the setup's model, or in front of ``upstream``."""
    port = free_port()
    label = label or ("quorum-upstream" if upstream else "quorum")
    command = [sys.executable, "-m", "quorum.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--served-name", setup.served_name, *setup.quorum_args]
    command += ["--max-model-len", str(setup.max_model_len), "--max-inflight-samples", "1024"]
    if upstream is not None:
        command += ["--upstream", f"{upstream.base_url}/v1", "--upstream-health-interval-s", "5"]
    else:
        command += ["--model", str(setup.model_dir)]
    url = f"http://127.0.0.1:{port}"
    env = engine_env(setup.cache_dir)
    env["QUORUM_CACHE_DIR"] = str(setup.cache_dir)
    process = ServerProcess(command, f"{url}/ready", setup.run_dir / f"{label}.log", env=env)
    engine = upstream.engine if upstream is not None else label
    return System(label, url, setup.served_name, engine=engine, process=process)


def optillm_server(setup: Setup, optillm: Path, upstream: System) -> System:
    """optillm in front of ``upstream``, from its own virtualenv (PEERS.md): run from an empty
    folder (it loads plugins from ``./optillm``), ``OPENAI_API_KEY`` set so ``--base-url`` is
    used; ``OPTILLM_API_KEY`` unset, or it loads a model itself."""
    port = free_port()
    folder = setup.run_dir / "optillm-cwd"
    folder.mkdir(parents=True, exist_ok=True)
    command = [str(optillm), "--base-url", f"{upstream.base_url}/v1"]
    command += ["--port", str(port), "--host", "127.0.0.1"]
    env = {"OPENAI_API_KEY": "dummy", "OPTILLM_API_KEY": "", "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    process = ServerProcess(
        command, f"{url}/health", setup.run_dir / "optillm.log", env=env, cwd=folder
    )
    return System("optillm", url, setup.served_name, engine=upstream.engine, process=process)


def attached(name: str, url: str, model: str) -> System:
    """A system the user runs (``--vllm-url``, ``--quorum-url``): not started or stopped here."""
    return System(name, url.rstrip("/").removesuffix("/v1"), model, engine=name)


def under_test(setup: Setup, system: str, url: str | None) -> tuple[list[System], System]:
    """What to start for one system (``quorum``, ``quorum-upstream`` or ``vllm``; a given
    ``url`` starts nothing), and the system to ask."""
    if url:
        target = attached(system, url, setup.served_name)
        return [target], target
    if system == "quorum":
        target = quorum_server(setup)
        return [target], target
    vllm = vllm_server(setup)
    if system == "vllm":
        return [vllm], vllm
    target = quorum_server(setup, upstream=vllm)
    return [vllm, target], target


@contextmanager
def running(systems: Sequence[System]) -> Iterator[list[System]]:
    """Start the systems in order (an upstream before what stands in front of it), stop them
    all in reverse order, whatever happens."""
    with ExitStack() as stack:
        for system in systems:
            if system.process is not None:
                print(f"[rig] starting {system.name} ...", flush=True)
                stack.callback(system.process.stop)
                system.started_s = system.process.start()
                print(f"[rig] {system.name} ready in {system.started_s:.1f} s", flush=True)
        yield list(systems)


def run_dir(parent: Path | None) -> Path:
    """A folder for this run's logs and engine temp files."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="rig-", dir=parent))
    return Path(tempfile.mkdtemp(prefix="quorum-rig-"))
