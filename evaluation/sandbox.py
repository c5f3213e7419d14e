"""Run a candidate function against assert-style tests in a bounded child process.

Model-written code is untrusted: it runs in a fresh ``python -I`` process in an empty temporary
folder, with limits on CPU seconds, address space, file size and open files, a wall-clock
timeout, and no inherited environment. It passes only if it exits 0 AFTER the last test, which
prints a fresh random token (so ``exit(0)`` before the asserts is a failure). This bounds runaway
code; it is not a security boundary against code written to escape (use a container for that).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30
FILE_BYTES = 1 << 20
MAX_CODE_CHARS = 65_536


@dataclass(frozen=True)
class CodeVerdict:
    """Whether the tests passed, and why not."""

    passed: bool
    reason: str


def _limits(cpu_s: int) -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))


def run_tests(code: str, tests: Sequence[str], *, timeout_s: float = TIMEOUT_S) -> CodeVerdict:
    """Execute ``code`` then each test statement; passed only if the process exits 0 in time."""
    if len(code) > MAX_CODE_CHARS:
        return CodeVerdict(False, "code too long")
    token = secrets.token_hex(16)
    program = code + "\n\n" + "\n".join(tests) + f"\nprint({token!r})\n"
    cpu_s = max(1, int(timeout_s))
    with tempfile.TemporaryDirectory(prefix="quorum-eval-") as folder:
        path = os.path.join(folder, "candidate.py")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(program)
        with open(os.path.join(folder, "stdout"), "w+b") as output:
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", path],
                cwd=folder,
                env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                stdin=subprocess.DEVNULL,
                stdout=output,  # a file under RLIMIT_FSIZE, so a print loop stays bounded
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so forks die with it
                preexec_fn=lambda: _limits(cpu_s),
            )
            try:
                status = child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                status = None
            finally:
                _kill_group(child)
            output.seek(max(0, output.seek(0, os.SEEK_END) - 256))
            tail = output.read()
    if status is None:
        return CodeVerdict(False, "timeout")
    if status != 0:
        return CodeVerdict(False, f"exit {status}")
    if not tail.rstrip().endswith(token.encode()):
        return CodeVerdict(False, "exited before the last test")
    return CodeVerdict(True, "passed")


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole process group (anything it forked), then reap the child."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
