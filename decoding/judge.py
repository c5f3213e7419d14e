"""Judging in bounds: the small protocol precise mode needs to run a judgement where it can be
timed out and killed, and the verdict every judged answer carries.

Model output is hostile input: a sixty-byte formula can ask sympy for a number with trillions of
digits. So the judgements that need math-verify or sympy (``decoding.symbolic``: parse a formula,
its exact value, key and fingerprint, the equality of two formulas) are pure functions of
strings, run through a ``Judge``: ``await judge.run(fn, *args)`` returns ``fn(*args)``, or raises
``JudgeFailed`` saying why it could not:

- ``timeout``: past the judge's per-task limit, or past the request's judging budget;
- ``too_large``: out of memory, too deeply nested, or a value too big to keep (``TooLarge``);
- ``error``: anything else (the worker died, the pool stopped, an unexpected exception).

The server's judge is a pool of worker processes with a memory limit each, killed and replaced
on expiry (``server.runtime.judge_pool``). ``InProcessJudge`` runs judgements in a thread of this
process and bounds nothing but what its input bounds: for tests and trusted input only.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

Verdict = Literal["ok", "timeout", "too_large", "error"]
Failure = Literal["timeout", "too_large", "error"]
_T = TypeVar("_T")

_INT_STR_LIMIT = "integer string conversion"  # CPython's ValueError past sys.int_max_str_digits


class TooLarge(Exception):
    """Raised by a judgement whose result would be too big to keep or print."""


class JudgeFailed(Exception):
    """A judgement that could not be made within bounds; ``reason`` says which one."""

    def __init__(self, reason: Failure, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Failure = reason


@runtime_checkable
class Judge(Protocol):
    """Runs pure, picklable judgements, each bounded in time and memory, and cancellable."""

    @property
    def budget_s(self) -> float | None:
        """Wall-clock judging time one request may spend in all (None: no budget)."""
        ...

    async def run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """``fn(*args)``, or ``JudgeFailed``; cancelling the caller stops the work."""
        ...


def failure_of(exc: BaseException) -> Failure:
    """The verdict an exception raised inside a judgement stands for."""
    if isinstance(exc, MemoryError | RecursionError | TooLarge):
        return "too_large"
    if isinstance(exc, ValueError) and _INT_STR_LIMIT in str(exc):
        return "too_large"
    return "error"


class InProcessJudge:
    """A ``Judge`` that runs judgements in a worker thread of this process (the loop's default
    executor unless given one): nothing can kill them, so only for tests and trusted input."""

    def __init__(self, executor: Executor | None = None, budget_s: float | None = None) -> None:
        self._executor = executor
        self._budget_s = budget_s

    @property
    def budget_s(self) -> float | None:
        """The per-request judging budget (none by default)."""
        return self._budget_s

    async def run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """``fn(*args)`` in a thread; its exceptions become ``JudgeFailed``."""
        call = functools.partial(fn, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except Exception as exc:  # the judgement's own failure, whatever it was
            raise JudgeFailed(failure_of(exc), type(exc).__name__) from exc
