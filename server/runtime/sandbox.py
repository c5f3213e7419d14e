"""Run one code candidate against its tests in a process of its own, within hard limits.

``run_candidate(code, suite, limits)`` is blocking and picklable: the server runs it in a
worker of a ``JudgePool`` (``server.runtime.verifier``), which bounds and can kill the worker;
the candidate itself runs in a separate child, so nothing it does reaches the worker or the
server. The child is ``server/runtime/sandbox_harness.py`` under the same interpreter:

- ``setpriv --pdeathsig KILL``: the child dies with the worker (a killed worker leaves nothing);
- ``unshare --net --pid --mount --ipc --uts --fork --kill-child``: no network (only a loopback
  that is down), its own process tree (killing ``unshare`` kills every process in it, fork bombs
  and daemons included), its own mounts (all read-only but a fresh ``tmpfs`` work directory and
  a fresh ``/proc`` that shows none of the server's processes);
- the harness caps CPU time, address space, file size, processes and open files, and drops to
  a user id of this run's own before the candidate runs; the environment is empty;
- the parent keeps a wall clock; past it the whole tree is killed (``timeout``).

Where namespaces are not available (``isolation()`` says so once per process), the candidate
still runs with the limits, the empty environment and its own user in a temporary directory, but
with the network and the rest of the filesystem as that user finds them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decoding.verification import Check, CheckStatus, CodeSuite, TestOutcome

HARNESS = str(Path(__file__).with_name("sandbox_harness.py"))
_NAMESPACES = ("--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child")
_SIGNALS: dict[int, tuple[CheckStatus, str]] = {
    signal.SIGXCPU: ("limit", "CPU time limit"),
    signal.SIGXFSZ: ("limit", "file size limit"),
    signal.SIGKILL: ("error", "killed (by itself, or out of memory)"),
    signal.SIGSEGV: ("error", "crashed (segmentation fault)"),
}
_DONE = b'{"event": "done"}'
_LIMIT_ERRORS = {"MemoryError": "memory limit", "BlockingIOError": "process limit"}


@dataclass(frozen=True)
class SandboxLimits:
    """What one candidate may use: wall clock, CPU seconds, memory, file size, processes."""

    timeout_s: float = 5.0
    cpu_s: int = 5
    memory_mb: int = 256
    file_mb: int = 16
    processes: int = 16
    output_kb: int = 256  # of the harness's report read back


@functools.cache
def isolation() -> str:
    """``"namespaces"`` where this process may create them (root, or a user namespace),
    else ``"none"``; probed once."""
    try:
        done = subprocess.run(
            ["setpriv", "--pdeathsig", "KILL", "--", "unshare", *_NAMESPACES, "--", "true"],
            capture_output=True,
            timeout=10,
            env={},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "none"
    return "namespaces" if done.returncode == 0 else "none"


def _command(isolated: bool) -> list[str]:
    python = [sys.executable, "-I", "-S", "-B", HARNESS]
    if not isolated:
        return python
    jail = ["setpriv", "--pdeathsig", "KILL", "--", "unshare", *_NAMESPACES, "--"]
    return [*jail, *python, "--isolated"]


def run_candidate(code: str, suite: CodeSuite, limits: SandboxLimits) -> Check:
    """Run ``code`` against ``suite`` in the sandbox; the check says what passed and what not."""
    if isolation() == "namespaces":
        return _run(code, suite, limits, None)  # its work directory is a tmpfs of its own
    with tempfile.TemporaryDirectory(prefix="quorum-sandbox-", ignore_cleanup_errors=True) as work:
        return _run(code, suite, limits, work)


def _run(code: str, suite: CodeSuite, limits: SandboxLimits, workdir: str | None) -> Check:
    isolated = workdir is None
    uid = sandbox_uid(os.getpid())
    job = {
        "code": code,
        "tests": list(suite.tests),
        "entry_point": suite.entry_point,
        "test_file": suite.test_file,
        "probes": [list(p) for p in suite.probes],
        "uid": uid,
        "workdir": workdir,
        "limits": {
            "cpu_s": limits.cpu_s,
            "memory_mb": limits.memory_mb,
            "file_mb": limits.file_mb,
            "processes": limits.processes,
        },
    }
    proc = subprocess.Popen(
        _command(isolated),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={},
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    output, timed_out = _read(proc, min(limits.timeout_s, suite.timeout_s), limits.output_kb)
    _wait_gone(uid)
    return _verdict(_events(output), proc.returncode, timed_out)


def sandbox_uid(worker_pid: int) -> int:
    """The user a worker's candidates run as: one candidate per worker at a time."""
    return 1_000_000 + worker_pid


def reap_sandbox(worker_pid: int) -> None:
    """Kill what a killed worker's candidate left running. Changing to the run's user clears
    the death signal ``setpriv`` and ``unshare --kill-child`` arm, so a sandbox outlives its
    worker unless someone kills its user's processes (a namespace's init takes its tree)."""
    uid = sandbox_uid(worker_pid)
    for entry in Path("/proc").iterdir():
        if _owner(entry) == uid:
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
    _wait_gone(uid)


def _wait_gone(uid: int, within_s: float = 5.0) -> None:
    """Wait until no process of the run's user is left: the kernel kills a dead namespace's
    processes after its init is gone, not before ``unshare`` is reaped."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(_owner(entry) == uid for entry in Path("/proc").iterdir()):
            return
        time.sleep(0.005)


def _owner(entry: Path) -> int | None:
    try:
        return entry.stat().st_uid if entry.name.isdigit() else None
    except OSError:
        return None


def _read(proc: subprocess.Popen[bytes], timeout_s: float, cap_kb: int) -> tuple[bytes, bool]:
    """The child's report, read until it exits, the cap, or the wall clock (then kill it)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size, timed_out = 0, False
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not selector.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk or size > cap_kb * 1024:
                break
            chunks.append(chunk)
            size += len(chunk)
            if _DONE in chunk:  # a child it left may hold the pipe open: it is killed below
                break
    _kill(proc)
    proc.stdout.close()
    return b"".join(chunks), timed_out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's session and reap it (``--kill-child`` takes its namespace with it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _events(output: bytes) -> list[dict[str, Any]]:
    events = []
    for line in output.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a cut last line, or bytes the candidate wrote to the report
        if isinstance(event, dict):
            events.append(event)
    return events


def _verdict(events: list[dict[str, Any]], returncode: int | None, timed_out: bool) -> Check:
    """What the events and the exit say about the candidate."""
    tests = tuple(
        TestOutcome(str(e.get("test")), bool(e.get("ok")), e.get("error"))
        for e in events
        if e.get("event") == "test"
    )
    started = [e.get("test") for e in events if e.get("event") == "start"]
    running = started[-1] if len(started) > len(tests) else None
    where = f" in {running}" if running else ""
    if timed_out:
        return Check(False, "timeout", f"wall-clock timeout{where}", tests=tests)
    if not any(e.get("event") == "done" for e in events):
        return _died(events, returncode, where, tests)
    load = next((e for e in events if e.get("event") == "load"), {})
    if load.get("error"):
        return Check(False, "failed", f"the code does not run: {load['error']}", tests=tests)
    failed = [t for t in tests if not t.ok]
    if not tests:
        return Check(None, "skipped", "no tests ran", tests=tests)
    if failed:
        first = failed[0]
        status = _limit_status(first.error)
        return Check(False, status, f"{first.name}: {first.error}", tests=tests)
    behaviour = _behaviour(events)
    return Check(True, "passed", f"passed {len(tests)} tests", behaviour, tests)


def _died(
    events: list[dict[str, Any]], returncode: int | None, where: str, tests: tuple[TestOutcome, ...]
) -> Check:
    """The harness ended without its last event: a signal (a limit, a kill) or an exit."""
    code = returncode if returncode is not None else 0
    signum = -code if code < 0 else code - 128 if code > 128 else 0
    status, what = _SIGNALS.get(signum, ("error", f"exited with status {code}"))
    return Check(False, status, f"the sandbox ended early{where}: {what}", tests=tests)


def _limit_status(error: str | None) -> CheckStatus:
    name = (error or "").split(":", 1)[0]
    text = error or ""
    limited = name in _LIMIT_ERRORS or "File too large" in text or "No space left" in text
    return "limit" if limited else "failed"


def _behaviour(events: list[dict[str, Any]]) -> str:
    """One digest of what the candidate returned on every test and probe."""
    digests = [str(e.get("digest")) for e in events if e.get("event") in ("test", "probe")]
    return hashlib.sha256("\x00".join(digests).encode()).hexdigest()[:16]
