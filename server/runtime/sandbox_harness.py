"""The script that runs one candidate inside the sandbox (``server.runtime.sandbox`` starts it).

It runs as ``python -I -S -B sandbox_harness.py [--isolated]``, with the standard library only
and an empty environment. Reading its job (JSON) from stdin, it:

1. with ``--isolated`` (it is pid 1 of fresh network, pid, mount, IPC and UTS namespaces, still
   root): remounts every mount read-only, mounts a fresh ``proc`` (host processes vanish) and a
   small ``tmpfs`` on ``/tmp`` for the work directory, and binds the interpreter's own
   directory read-only inside it (its real home may be unreadable to the sandbox user);
2. writes ``solution.py`` into a fresh work directory and enters it;
3. caps CPU time, address space, file size, processes and open files (``setrlimit``);
4. drops to a user id of its own (never root) with no supplementary groups and no new privileges;
5. runs the candidate, then each test and probe, writing one JSON line per event to the saved
   stdout (the candidate's own stdout and stderr go to ``/dev/null``).

Events: ``{"event": "start", "test": name}``, ``{"event": "test", "test": name, "ok": bool,
"error": str|None, "output": str}``, ``{"event": "probe", "output": str}``, ``{"event": "load",
"error": str|None}``, ``{"event": "done"}``. The parent reads what arrived before a kill, so a
timeout still names the test that was running.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import resource
import sys
import types
from typing import Any

_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_PR_SET_NO_NEW_PRIVS = 38
_OUTPUT_CHARS = 200  # of a test's output kept for the report (the full repr is hashed)
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    args = (source.encode(), target.encode(), fstype.encode() if fstype else None, flags)
    if _libc.mount(*args, data.encode() if data else None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _isolate(limits: dict[str, Any]) -> str:
    """Make the filesystem read-only but for a fresh tmpfs; the work directory's path."""
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4] for line in info]
    for point in sorted(set(points), key=len):
        if point.startswith(("/proc", "/sys")):
            continue
        with contextlib.suppress(OSError):  # one that cannot be: usually already read-only
            _mount("none", point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY, None)
    _mount("proc", "/proc", "proc", 0, None)
    size = f"size={int(limits['file_mb'])}m,mode=1777"
    _mount("tmpfs", "/tmp", "tmpfs", 0, size)
    prefix = "/tmp/.python"
    os.mkdir(prefix)
    _mount(sys.base_prefix, prefix, None, _MS_BIND | _MS_REC, None)
    _mount("none", prefix, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY, None)
    real = sys.base_prefix
    sys.path[:] = [p.replace(real, prefix, 1) if p.startswith(real) else p for p in sys.path]
    sys.path_importer_cache.clear()
    for module in list(sys.modules.values()):  # packages already imported (encodings, ...)
        paths = getattr(module, "__path__", None)
        if isinstance(paths, list):
            paths[:] = [p.replace(real, prefix, 1) if p.startswith(real) else p for p in paths]
    os.mkdir("/tmp/work")
    return "/tmp/work"


def _limit(limits: dict[str, Any]) -> None:
    """Cap the candidate's resources (the parent's wall clock covers the rest)."""
    memory = int(limits["memory_mb"]) * 2**20
    file_size = int(limits["file_mb"]) * 2**20
    cpu = int(limits["cpu_s"])
    for name, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_FSIZE, (file_size, file_size)),
        (resource.RLIMIT_NPROC, (int(limits["processes"]),) * 2),
        (resource.RLIMIT_NOFILE, (64, 64)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        hard = resource.getrlimit(name)[1]  # inherited; raising it needs CAP_SYS_RESOURCE
        if hard != resource.RLIM_INFINITY:
            value = (min(value[0], hard), min(value[1], hard))
        resource.setrlimit(name, value)


def _drop(workdir: str, uid: int) -> None:
    """Become this run's own user (root keeps nothing: files, signals, limits)."""
    if os.getuid() != 0:
        return
    os.chown(workdir, uid, uid)
    os.chown(os.path.join(workdir, "solution.py"), uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:300] + "..."


def _output(value: Any) -> tuple[str, str]:
    """A value's short display and the digest that groups equal behaviour."""
    try:
        text = repr(value)
    except Exception as exc:  # a hostile __repr__
        text = f"<unprintable: {type(exc).__name__}>"
    return text[:_OUTPUT_CHARS], hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _equal(result: Any, expected: Any) -> bool:
    try:
        if result == expected:
            return True
        return bool(json.loads(json.dumps(result)) == expected)  # tuples against JSON lists
    except Exception:
        return False


class _Run:
    """Writes events to the saved stdout, one JSON line each."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def emit(self, **event: Any) -> None:
        os.write(self.fd, (json.dumps(event) + "\n").encode())

    def test(
        self,
        name: str,
        namespace: dict[str, Any],
        job: dict[str, Any],
        case: Any,
        shared: bool = False,
    ) -> None:
        """Run one test; its event carries the output's digest (what behaviour groups compare)."""
        self.emit(event="start", test=name)
        error, shown, digest = None, "", "pass"
        try:
            if isinstance(case, str):  # in a copy of the namespace, or (shared) in it
                exec(compile(case, name, "exec"), namespace if shared else dict(namespace))
            elif callable(case):
                case()
            else:
                result = namespace[job["entry_point"]](*case["args"], **case.get("kwargs", {}))
                shown, digest = _output(result)
                if not _equal(result, case["expected"]):
                    error = f"expected {case['expected']!r:.200}, got {shown}"
        except BaseException as exc:  # the candidate's own failure, whatever it raised
            error = _describe(exc) or type(exc).__name__
            digest = "raised:" + type(exc).__name__
        ok = error is None
        self.emit(event="test", test=name, ok=ok, error=error, output=shown, digest=digest)


def _test_file(job: dict[str, Any], namespace: dict[str, Any], out: _Run) -> None:
    """The test module: its body is one test, then each ``test*`` function, then a
    HumanEval-style ``check(candidate)`` when it defines one and there is an entry point."""
    suite: dict[str, Any] = dict(namespace)
    out.test("test_file", suite, job, job["test_file"], shared=True)
    for name, fn in list(suite.items()):
        if name.startswith("test") and callable(fn) and name not in namespace:
            out.test(name, namespace, job, fn)
    check, entry = suite.get("check"), job.get("entry_point")
    if callable(check) and "check" not in namespace and entry in namespace:
        out.test("check", namespace, job, lambda: check(namespace[entry]))


def _run(job: dict[str, Any], out: _Run) -> None:
    module = types.ModuleType("solution")
    module.__file__ = os.path.abspath("solution.py")
    sys.modules["solution"] = module
    try:
        exec(compile(job["code"], "solution.py", "exec"), module.__dict__)
    except BaseException as exc:
        out.emit(event="load", error=_describe(exc))
        return
    out.emit(event="load", error=None)
    namespace = module.__dict__
    for index, case in enumerate(job["tests"]):
        name = case.get("name") if isinstance(case, dict) else None
        out.test(name or f"test_{index}", namespace, job, case)
    if job.get("test_file"):
        _test_file(job, namespace, out)
    for args in job.get("probes") or []:
        try:
            _, digest = _output(namespace[job["entry_point"]](*args))
        except BaseException as exc:
            digest = "raised:" + type(exc).__name__
        out.emit(event="probe", digest=digest)


def main() -> None:
    """Set the sandbox up as root, drop, run the job, report."""
    job = json.loads(sys.stdin.buffer.read())
    limits = job["limits"]
    # Without namespaces the parent makes the work directory, and removes it after the run.
    workdir = _isolate(limits) if "--isolated" in sys.argv else job["workdir"]
    with open(os.path.join(workdir, "solution.py"), "w") as source:
        source.write(job["code"])
    os.chdir(workdir)
    sys.path.insert(0, workdir)
    _limit(limits)
    _drop(workdir, int(job["uid"]))
    out = _Run(os.dup(1))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        _run(job, out)
        out.emit(event="done")
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
