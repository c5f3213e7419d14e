"""Tasks for the judge pool's tests: module-level, so workers can unpickle them, and light (no
pytest import), so a worker loads them fast."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def spin(pid_file: str) -> None:
    """Say which worker runs this, then burn CPU forever (only a kill ends it)."""
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        pass


def hog(megabytes: int) -> int:
    """Allocate and touch ``megabytes`` of memory; its size if that was allowed."""
    block = bytearray(megabytes * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    return len(block)


def address_space_limit() -> int:
    """The worker's RLIMIT_AS (soft)."""
    return resource.getrlimit(resource.RLIMIT_AS)[0]


class Odd(Exception):
    """An exception that pickles but cannot be unpickled (its constructor wants two args)."""

    def __init__(self, first: int, second: int) -> None:
        super().__init__(first)
        self.second = second


def raise_odd() -> None:
    """Fail with an exception the server could not unpickle."""
    raise Odd(1, 2)


def fail(kind: str) -> None:
    """Fail with a builtin exception."""
    raise {"value": ValueError, "memory": MemoryError, "recursion": RecursionError}[kind]("x")
