"""Engine worker processes must not outlive the server: find them, and stop what is left.

A clean engine stop ends its workers; an engine core killed hard leaves them orphaned, so the
server records its descendants once the engine is up and reaps survivors at exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection
from pathlib import Path

Process = tuple[int, str]  # pid and start time, so a reused pid is never mistaken for ours


def _stat(pid: int) -> tuple[int, str, str] | None:
    """Parent pid, state and start time of a process, from /proc (None if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int, skip: Collection[int] = ()) -> list[Process]:
    """Every live process below ``root`` (the engine's workers, and theirs), leaving out the
    subtrees of ``skip`` (processes that stop on their own, like the judge pool's)."""
    children: dict[int, list[Process]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            children.setdefault(info[0], []).append((int(entry.name), info[2]))
    found: list[Process] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child[0] not in skip:
                found.append(child)
                pending.append(child[0])
    return found


def _alive(process: Process) -> bool:
    info = _stat(process[0])
    return info is not None and info[2] == process[1] and info[1] != "Z"


def reap(processes: list[Process], grace_s: float = 3.0) -> int:
    """Stop processes that outlived their parent (SIGTERM, then SIGKILL); how many there were.
    An engine core killed hard leaves its workers orphaned: they must not outlive the server."""
    left = [p for p in processes if _alive(p)]
    for pid, _ in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(_alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in left:
        if _alive(process):
            with contextlib.suppress(OSError):
                os.kill(process[0], signal.SIGKILL)
    return len(left)
