"""Worker processes that run work on untrusted input within hard bounds: judging answers now.

``JudgePool`` implements ``decoding.judge.Judge`` for any pure, picklable callable (formula
judgements today; candidate code for verified voting later): ``await pool.run(fn, *args)``.

- **Clean workers.** Workers come from the ``forkserver`` start method: forked from a small
  server process started fresh (it never held an engine), which imports the ``preload`` modules
  once (``server.runtime.judge_warm`` warms math-verify there); each worker then runs the
  warm-up (cheap when inherited warm), so a replacement is ready in a few hundredths of a
  second. What runs inside a worker is ``server.runtime.judge_worker``.
- **Memory.** Each worker's address space is capped (``RLIMIT_AS``) at its size after the
  warm-up plus ``memory_mb``: an allocation past it raises ``MemoryError`` there (``too_large``),
  never in the server.
- **Time.** Each task has a wall-clock limit; past it the worker is killed (SIGTERM, which the
  worker does not catch, so even a C loop dies) and replaced, and ``run`` raises ``timeout``.
  There is no CPU-time rlimit: it would add up over a worker's life and kill healthy workers.
- **Cancellation.** Cancelling the task that awaits ``run`` (a client that left, a request
  timeout, the end of a drain) kills the worker running its work, and ``run`` returns only once
  that process is gone (each task announces its worker's pid on a start board), so whoever
  counts the request (admission) counts it until its work has really stopped. A task cancelled
  before any worker began it costs nothing. At most ``workers`` tasks are handed to pebble at a
  time; the rest wait here.
- **Stop** kills every worker, whatever it is doing. Workers also die with their fork server
  (``PR_SET_PDEATHSIG`` on Linux), which the server stops as it exits.

pebble's ``ProcessPool`` does the killing and replacing. A pool broken anyway (pebble gives up
when a worker is killed from outside while none is busy) is replaced at the next task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from decoding.judge import Failure, JudgeFailed, failure_of
from decoding.symbolic import warm_up
from server.runtime.judge_worker import Outcome, contained, start_worker
from server.runtime.reaper import Process, descendants
from server.runtime.settings import Settings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
KILL_WAIT_S = 5.0  # how long ``run`` waits for a cancelled task's worker to be gone


class JudgePool:
    """A ``decoding.judge.Judge`` over killable worker processes (see the module docstring)."""

    def __init__(
        self,
        workers: int,
        timeout_s: float,
        memory_mb: int,
        budget_s: float | None = None,
        warm_up: Callable[[], None] | None = None,
        preload: tuple[str, ...] = (),
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._budget_s = budget_s
        self._warm_up = warm_up
        self._preload = preload
        self._context = multiprocessing.get_context("forkserver")
        self._pool: ProcessPool | None = None
        self._slots: asyncio.Semaphore | None = None
        self._pending: set[concurrent.futures.Future[Outcome]] = set()
        self._tokens = itertools.count()
        self._started: dict[int, int | None] = {}  # task token -> pid of the worker running it
        self._board: tuple[Connection, Connection] | None = None
        self._stopped = asyncio.Event()
        self._replacing = asyncio.Lock()
        self.server_pid: int | None = None  # the fork server the workers are forked from
        self.helpers: frozenset[Process] = frozenset()  # processes starting the pool started

    @property
    def budget_s(self) -> float | None:
        """Wall-clock judging time one request may spend in all."""
        return self._budget_s

    async def start(self) -> None:
        """Start the workers and check that they serve (before the server says it is ready)."""
        self._slots = asyncio.Semaphore(self.workers)
        self._stopped = asyncio.Event()
        self._replacing = asyncio.Lock()
        self._board = self._context.Pipe(duplex=False)
        asyncio.get_running_loop().add_reader(self._board[0].fileno(), self._read_board)
        before = await asyncio.to_thread(_below_us)
        self._pool = await asyncio.to_thread(self._new_pool)
        self.server_pid = await self.run(os.getppid)
        self.helpers = frozenset(await asyncio.to_thread(_below_us) - before)

    def _new_pool(self) -> ProcessPool:
        # Takes effect when this starts the fork server (the first pool of the process).
        # ``__main__`` too: else every worker imports the main script again (spawn's rule).
        modules = ["__main__", start_worker.__module__, *self._preload]
        self._context.set_forkserver_preload(modules)
        board = None if self._board is None else self._board[1]
        pool = ProcessPool(
            max_workers=self.workers,
            initializer=start_worker,
            initargs=(self.memory_mb, self._warm_up, board),
            context=self._context,
        )
        if not pool.active:  # reading it starts pebble's workers: here, not on the event loop
            raise JudgeFailed("error", "the judge pool did not start")
        return pool

    def _read_board(self) -> None:
        """Note which worker began which task (announcements of finished tasks are dropped)."""
        if self._board is None:
            return
        reader = self._board[0]
        while reader.poll(0):
            token, pid = reader.recv()
            if token in self._started:
                self._started[token] = pid

    async def run(self, fn: Callable[..., _T], /, *args: Any, timeout_s: float | None = None) -> _T:
        """``fn(*args)`` in a worker within the time limit (``timeout_s``, else the pool's);
        ``JudgeFailed`` says why not; cancelling the caller kills the worker running it."""
        if self._slots is None:
            raise JudgeFailed("error", "the judge pool is not running")
        limit = self.timeout_s if timeout_s is None else timeout_s
        async with self._slots:
            try:
                status, value = await self._outcome(fn, args, limit)
            except BrokenProcessPool:  # the task never ran to an end: once more, on a new pool
                try:
                    status, value = await self._outcome(fn, args, limit)
                except BrokenProcessPool:
                    raise JudgeFailed("error", "the judge pool broke") from None
        if status != "ok":
            reason: Failure = "too_large" if status == "too_large" else "error"
            raise JudgeFailed(reason, str(value))
        result: _T = value
        return result

    async def _outcome(
        self, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float
    ) -> Outcome:
        """One attempt: the worker's outcome, ``JudgeFailed`` for what pebble reports, or
        ``BrokenProcessPool`` when the whole pool broke under the task."""
        token = next(self._tokens)
        self._started[token] = None
        future = await self._schedule(token, fn, args, timeout_s)
        self._pending.add(future)
        result = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(result)  # cancelling us must not cancel it unseen
        except asyncio.CancelledError:
            result.add_done_callback(_settled)  # nobody awaits it any more
            await self._killed(token, future)
            if _being_cancelled():
                raise
            raise JudgeFailed("error", "the judge pool stopped") from None
        except TimeoutError:
            raise JudgeFailed("timeout", f"past {timeout_s} s") from None
        except ProcessExpired as exc:
            raise JudgeFailed("error", f"the worker died ({exc.exitcode})") from None
        except BrokenProcessPool:
            raise
        except Exception as exc:  # what ``contained`` could not catch (MemoryError)
            raise JudgeFailed(failure_of(exc), type(exc).__name__) from None
        finally:
            self._pending.discard(future)
            self._started.pop(token, None)

    async def _schedule(
        self, token: int, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float
    ) -> concurrent.futures.Future[Outcome]:
        """Hand a task to pebble, first replacing a pool that broke."""
        if self._pool is not None and not self._pool.active:
            async with self._replacing:
                if self._pool is not None and not self._pool.active:
                    log.warning("the judge pool broke: replacing it")
                    broken, self._pool = self._pool, await asyncio.to_thread(self._new_pool)
                    await asyncio.to_thread(_stop, broken)
        if self._pool is None:
            raise JudgeFailed("error", "the judge pool is not running")
        try:
            return self._pool.schedule(contained, (token, fn, args), timeout=timeout_s)
        except RuntimeError as exc:
            raise JudgeFailed("error", "the judge pool is not running") from exc

    async def _killed(self, token: int, future: concurrent.futures.Future[Outcome]) -> None:
        """Cancel a task (pebble kills a worker running a cancelled task) and wait until the
        worker that began it is gone; once the pool is stopping, until ``stop`` is done."""
        self._read_board()  # announcements not yet read: a worker may have just begun it
        pid = self._started.get(token)
        future.cancel()
        if self._pool is None:
            await self._stopped.wait()
        elif pid is not None and not await asyncio.to_thread(_wait_gone, pid, KILL_WAIT_S):
            log.warning("a cancelled judgement's worker outlived its wait", extra={"pid": pid})

    async def stop(self) -> None:
        """Kill every worker, whatever it is doing; waiting callers get ``JudgeFailed``."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            for future in list(self._pending):
                future.cancel()
            await asyncio.to_thread(_stop, pool)
        finally:
            self._stopped.set()
            if self._board is not None:
                asyncio.get_running_loop().remove_reader(self._board[0].fileno())
                for end in self._board:
                    end.close()
                self._board = None


def answer_judge(settings: Settings) -> JudgePool:
    """The pool that judges precise mode's answers, with the settings' limits; its workers
    start with math-verify warm (``server.runtime.judge_warm``)."""
    return JudgePool(
        settings.judge_workers,
        settings.judge_timeout_s,
        settings.judge_memory_mb,
        settings.judge_budget_s,
        warm_up=warm_up,
        preload=("server.runtime.judge_warm",),
    )


def _stop(pool: ProcessPool) -> None:
    """Stop a pebble pool, killing its workers (blocking: run it in a thread)."""
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join()


def _wait_gone(pid: int, within_s: float) -> bool:
    """Poll until ``pid`` has exited (gone, or a zombie); whether it did in time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        time.sleep(0.005)
    return False


def _settled(result: asyncio.Future[Outcome]) -> None:
    """Retrieve an abandoned result, so asyncio does not log it as never retrieved."""
    if not result.cancelled():
        result.exception()


def _below_us() -> set[Process]:
    return set(descendants(os.getpid()))


def _being_cancelled() -> bool:
    """Whether the current task itself is being cancelled (not only the future it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
