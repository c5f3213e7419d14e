"""The code sandbox against hostile candidates: each one contained, and reported as what it is.

Every candidate here defines ``f`` and is run against one call test; the hostile part runs
inside ``f``. Reports are checked for their status and reason; no wall-clock bound is asserted.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path

import pytest

from decoding.verification import CodeSuite
from server.runtime import sandbox
from server.runtime.judge_pool import JudgePool
from server.runtime.sandbox import SandboxLimits, isolation, run_candidate

LIMITS = SandboxLimits(timeout_s=2.0, cpu_s=2, memory_mb=256, file_mb=8, processes=16)
SUITE = CodeSuite(tests=({"name": "calls_f", "args": [], "expected": "ok"},), entry_point="f")
SECRET = "sk-quorum-test-secret-0123456789"
needs_namespaces = pytest.mark.skipif(
    isolation() != "namespaces", reason="this platform gives no namespaces to the sandbox"
)


def _run(body: str, suite: CodeSuite = SUITE) -> tuple[bool | None, str, str]:
    code = "import os, signal, socket, sys, time\n\ndef f():\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    check = run_candidate(code, suite, LIMITS)
    return check.verified, check.status, check.reason or ""


def _sandbox_processes() -> list[int]:
    """Processes running as a sandbox user (the harness gives each run a uid past 1,000,000)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            uid = entry.stat().st_uid if entry.name.isdigit() else 0
        except OSError:
            continue
        if uid >= 1_000_000:
            found.append(int(entry.name))
    return found


def test_a_correct_candidate_passes_and_a_wrong_one_names_the_test() -> None:
    assert _run("return 'ok'")[:2] == (True, "passed")
    verified, status, reason = _run("return 'no'")
    assert (verified, status) == (False, "failed")
    assert reason == "calls_f: expected 'ok', got 'no'"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("while True:\n    pass", "timeout", "timeout in calls_f"),
        ("time.sleep(3600)", "timeout", "timeout in calls_f"),
        ("while True:\n    os.fork()", "limit", "BlockingIOError"),
        ("x = bytearray(2**33)\nreturn 'ok'", "limit", "MemoryError"),
        ("x = [b'x' * 2**20 for _ in range(10**4)]\nreturn 'ok'", "limit", "MemoryError"),
        ("open('big', 'wb').write(b'x' * 2**26)\nreturn 'ok'", "limit", "OSError"),
        ("raise SystemExit(3)", "failed", "SystemExit"),
        ("os._exit(0)", "error", "ended early in calls_f"),
        ("import ctypes\nctypes.string_at(0)", "error", "ended early in calls_f: crashed"),
    ],
)
def test_hostile_candidates_are_stopped_and_reported(body: str, status: str, reason: str) -> None:
    verified, got_status, got_reason = _run(body)
    assert (verified, got_status) == (False, status), got_reason
    assert reason in got_reason


@needs_namespaces
def test_no_process_outlives_its_run() -> None:
    body = "if os.fork() == 0:\n    os.setsid()\n    time.sleep(3600)\nreturn 'ok'"
    assert _run(body)[:2] == (True, "passed")
    assert _sandbox_processes() == []


@needs_namespaces
@pytest.mark.parametrize("target", ["/work/quorum-sandbox-escape", "/tmp/quorum-sandbox-escape"])
def test_writes_outside_its_directory_do_not_land(target: str) -> None:
    verified, _, reason = _run(f"open({target!r}, 'w').write('x')\nreturn 'ok'")
    assert not Path(target).exists()
    if target.startswith("/tmp"):  # a private tmpfs: the write succeeds, and vanishes
        assert verified is True
    else:
        assert (verified, "Read-only file system" in reason) == (False, True), reason


@needs_namespaces
def test_the_servers_environment_is_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_TEST_API_KEY", SECRET)
    body = (
        "seen = repr(dict(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        seen += open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1')\n"
        "    except OSError:\n"
        "        pass\n"
        f"return 'ok' if {SECRET!r} not in seen else 'leaked'"
    )
    assert _run(body)[:2] == (True, "passed")


@needs_namespaces
def test_no_network_not_even_to_the_hosts_loopback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        body = (
            f"for address in (('127.0.0.1', {port}), ('1.1.1.1', 80)):\n"
            "    try:\n"
            "        socket.create_connection(address, timeout=1).close()\n"
            "        return 'connected'\n"
            "    except OSError:\n"
            "        pass\n"
            "return 'ok'"
        )
        assert _run(body)[:2] == (True, "passed")


async def test_a_candidate_that_kills_its_parents_leaves_the_pool_serving() -> None:
    pool = JudgePool(1, LIMITS.timeout_s + 5, LIMITS.memory_mb + 64)
    await pool.start()
    try:
        killer = (
            "import os, signal\n\ndef f():\n"
            "    for pid in (os.getppid(), -1, 1):\n"
            "        try:\n"
            "            os.kill(pid, signal.SIGKILL)\n"
            "        except OSError:\n"
            "            pass\n"
            "    return 'ok'\n"
        )
        first = await pool.run(run_candidate, killer, SUITE, LIMITS)
        assert first.verified is True, first  # it ran on, and what it could reach was itself
        good = await pool.run(run_candidate, "def f():\n    return 'ok'\n", SUITE, LIMITS)
        assert good.verified is True
        server = Path(f"/proc/{pool.server_pid}")
        assert pool.server_pid is not None and await asyncio.to_thread(server.exists)
    finally:
        await pool.stop()


def test_probes_group_by_behaviour() -> None:
    suite = CodeSuite(tests=({"args": [2], "expected": 4},), entry_point="f", probes=((-3,), (0,)))
    square = run_candidate("def f(x):\n    return x * x\n", suite, LIMITS)
    also_square = run_candidate("def f(x):\n    return x ** 2\n", suite, LIMITS)
    double = run_candidate("def f(x):\n    return x + x\n", suite, LIMITS)
    assert square.verified and also_square.verified and double.verified
    assert square.behaviour == also_square.behaviour != double.behaviour


@pytest.mark.parametrize(
    ("test_file", "code", "verified", "reason"),
    [
        ("assert add(1, 2) == 3\n", "def add(a, b):\n    return a + b\n", True, "passed 1 tests"),
        ("assert add(1, 2) == 3\n", "def add(a, b):\n    return 0\n", False, "test_file: Asser"),
        (
            "def test_small():\n    assert add(2, 2) == 4\n\ndef test_neg():\n"
            "    assert add(-1, 1) == 0\n",
            "def add(a, b):\n    return a * b\n",
            False,
            "test_neg: AssertionError",
        ),
        (  # HumanEval's shape: check(candidate) is called with the entry point
            "def check(candidate):\n    assert candidate(2, 3) == 5\n",
            "def add(a, b):\n    return a + b\n",
            True,
            "passed 2 tests",
        ),
        ("def check(candidate):\n    assert candidate(2, 3) == 5\n", "add = max\n", False, "check"),
    ],
)
def test_a_test_file_runs_its_body_its_test_functions_and_check(
    test_file: str, code: str, verified: bool, reason: str
) -> None:
    suite = CodeSuite(test_file=test_file, entry_point="add")
    check = run_candidate(code, suite, LIMITS)
    assert check.verified is verified, check
    assert (check.reason or "").startswith(reason), check


def test_a_child_left_behind_does_not_hold_the_report_open() -> None:
    body = "if os.fork() == 0:\n    time.sleep(3600)\nreturn 'ok'"
    verified, status, reason = _run(body)
    assert (verified, status) == (True, "passed"), reason


def test_without_namespaces_the_limits_still_hold_and_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "isolation", lambda: "none")
    before = set(Path(tempfile.gettempdir()).glob("quorum-sandbox-*"))

    # (only modules the harness loaded before dropping root: the interpreter's home may be
    # closed to the sandbox user, and without a mount namespace nothing opens it)
    def status(body: str) -> str:
        code = "import os\n\ndef f():\n" + "".join(f"    {line}\n" for line in body.splitlines())
        return run_candidate(code, SUITE, LIMITS).status

    assert status("return 'ok'") == "passed"
    assert status("while True:\n    os.fork()") == "limit"
    assert status("x = bytearray(2**33)") == "limit"
    assert set(Path(tempfile.gettempdir()).glob("quorum-sandbox-*")) == before
