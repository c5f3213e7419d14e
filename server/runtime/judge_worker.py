"""What runs inside a judge worker process (``server.runtime.judge_pool`` runs the workers).

``start_worker`` is each worker's initializer: SIGTERM kills at once (pebble's handler would wait
for Python code, and a worker stuck in C never gets back to it), the worker dies with its fork
server (``PR_SET_PDEATHSIG``), warms up, and caps its own address space. ``contained`` wraps
every task: it first tells the server which process runs the task (on the start board, a pipe
shared by the workers), so that cancelling the task can wait for that very process to die; then
it turns any exception into a plain outcome, because an exception the server cannot unpickle
would break pebble's pool for everyone.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from decoding.judge import failure_of

Outcome = tuple[str, Any]  # ("ok", value) or (failure reason, exception name)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_board: Connection | None = None  # this worker's end of the start board


def address_space() -> int | None:
    """This process's virtual memory size in bytes (None where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent (the fork server) exits."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)  # this process: libc among its symbols
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_worker(
    memory_mb: int, warm_up: Callable[[], None] | None, board: Connection | None
) -> None:
    """Worker initializer: die at once on SIGTERM or with the fork server, warm up, then cap
    the address space at its size now plus ``memory_mb``."""
    global _board
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    _board = board
    if warm_up is not None:
        warm_up()
    size = address_space()
    if size is not None:
        limit = size + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def contained(token: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> Outcome:
    """Run task ``token`` in this worker: announce it, then ``fn(*args)`` as a plain outcome."""
    if _board is not None:
        _board.send((token, os.getpid()))  # a few bytes: one atomic write, no lock needed
    try:
        return "ok", fn(*args)
    except Exception as exc:
        return failure_of(exc), type(exc).__name__
