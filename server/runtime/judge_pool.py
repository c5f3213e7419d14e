"""Worker processes that run work on untrusted input within hard bounds: judging answers now.

``JudgePool`` implements ``decoding.judge.Judge`` for any pure, picklable callable (formula
judgements today; candidate code for verified voting later): ``await pool.run(fn, *args)``.

- **Clean workers.** Workers come from the ``forkserver`` start method: forked from a small
  server process started fresh (it never held an engine), which imports the ``preload`` modules
  once (``server.runtime.judge_warm`` warms math-verify there); each worker then runs the
  warm-up (cheap when inherited warm), so a replacement is ready in a few hundredths of a
  second.
- **Memory.** Each worker's address space is capped (``RLIMIT_AS``) at its size after the
  warm-up plus ``memory_mb``: an allocation past it raises ``MemoryError`` there (``too_large``),
  never in the server.
- **Time.** Each task has a wall-clock limit; past it the worker is killed (SIGTERM, which the
  worker does not catch, so even a C loop dies) and replaced, and ``run`` raises ``timeout``.
  There is no CPU-time rlimit: it would add up over a worker's life and kill healthy workers.
- **Cancellation.** Cancelling the task that awaits ``run`` (a client that left, a request
  timeout, the end of a drain) kills the worker running its work, and ``run`` returns only once
  that worker is gone, so whoever counts the request (admission) counts it until its work has
  really stopped. At most ``workers`` tasks are handed to the workers at a time; the rest wait
  here, where cancelling them costs nothing.
- **Stop** kills every worker, whatever it is doing. Workers also die with their fork server
  (``PR_SET_PDEATHSIG`` on Linux), which exits with the server: a server killed hard leaves no
  worker spinning on.

pebble's ``ProcessPool`` does the killing and replacing. Exceptions are turned into plain
outcomes inside the worker (``_contained``), because an exception that cannot be unpickled in the
server would break pebble's pool for everyone; a pool broken anyway (a worker killed from
outside while idle) is replaced at the next task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import resource
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from decoding.judge import Failure, JudgeFailed, failure_of
from decoding.symbolic import warm_up
from server.runtime.reaper import descendants
from server.runtime.settings import Settings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
Outcome = tuple[str, Any]  # ("ok", value) or (failure reason, exception name)
KILL_WAIT_S = 5.0  # how long ``run`` waits for pebble to kill a cancelled task's worker
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (None where /proc is missing)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent (the fork server) exits."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _start_worker(memory_mb: int, warm_up: Callable[[], None] | None) -> None:
    """Worker initializer: die at once on SIGTERM or with the fork server, warm up, then cap
    the address space."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # pebble's handler waits for Python code
    _die_with_parent()
    if warm_up is not None:
        warm_up()
    size = _address_space()
    if size is not None:
        limit = size + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _contained(fn: Callable[..., Any], args: tuple[Any, ...]) -> Outcome:
    """Run ``fn`` in the worker; any exception becomes a plain, always-picklable outcome."""
    try:
        return "ok", fn(*args)
    except Exception as exc:
        return failure_of(exc), type(exc).__name__


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
        self._pool: ProcessPool | None = None
        self._slots: asyncio.Semaphore | None = None
        self._pending: set[concurrent.futures.Future[Outcome]] = set()
        self._waiter: ThreadPoolExecutor | None = None
        self._stopped = asyncio.Event()
        self._replacing = asyncio.Lock()
        self.server_pid: int | None = None  # the fork server the workers are forked from
        self.helpers: frozenset[int] = frozenset()  # processes that starting the pool started

    @property
    def budget_s(self) -> float | None:
        """Wall-clock judging time one request may spend in all."""
        return self._budget_s

    async def start(self) -> None:
        """Start the workers and check that they serve (before the server says it is ready)."""
        self._slots = asyncio.Semaphore(self.workers)
        self._stopped = asyncio.Event()
        self._replacing = asyncio.Lock()
        self._waiter = ThreadPoolExecutor(self.workers + 1, thread_name_prefix="judge-pool")
        before = await asyncio.to_thread(_below_us)
        self._pool = await asyncio.to_thread(self._new_pool)
        self.server_pid = await self.run(os.getppid)
        # The fork server and multiprocessing's resource tracker exit with this process, and
        # the workers with the pool: the engine reaper must leave them alone.
        started = await asyncio.to_thread(_below_us) - before
        self.helpers = frozenset({*started, self.server_pid})

    def _new_pool(self) -> ProcessPool:
        context = multiprocessing.get_context("forkserver")
        # Takes effect when this starts the fork server (the first pool of the process).
        # ``__main__`` too: else every worker imports the main script again (spawn's rule).
        context.set_forkserver_preload(["__main__", _start_worker.__module__, *self._preload])
        pool = ProcessPool(
            max_workers=self.workers,
            initializer=_start_worker,
            initargs=(self.memory_mb, self._warm_up),
            context=context,
        )
        if not pool.active:  # reading it starts pebble's workers: here, not on the event loop
            raise JudgeFailed("error", "the judge pool did not start")
        return pool

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
        future = await self._schedule(fn, args, timeout_s)
        self._pending.add(future)
        result = asyncio.wrap_future(future)
        try:
            # Shielded: on cancellation, ``_killed`` must see whether the task had started.
            return await asyncio.shield(result)
        except asyncio.CancelledError:
            result.add_done_callback(_settled)  # nobody awaits it any more
            await self._killed(future)
            if _being_cancelled():
                raise
            raise JudgeFailed("error", "the judge pool stopped") from None
        except TimeoutError:
            raise JudgeFailed("timeout", f"past {timeout_s} s") from None
        except ProcessExpired as exc:
            raise JudgeFailed("error", f"the worker died ({exc.exitcode})") from None
        except BrokenProcessPool:
            raise
        except Exception as exc:  # what ``_contained`` could not catch (MemoryError)
            raise JudgeFailed(failure_of(exc), type(exc).__name__) from None
        finally:
            self._pending.discard(future)

    async def _schedule(
        self, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float
    ) -> concurrent.futures.Future[Outcome]:
        """Hand a task to pebble, first replacing a pool that broke (a worker killed while
        idle breaks pebble's pool for good)."""
        if self._pool is not None and not self._pool.active:
            async with self._replacing:
                if self._pool is not None and not self._pool.active:
                    log.warning("the judge pool broke: replacing it")
                    broken, self._pool = self._pool, await asyncio.to_thread(self._new_pool)
                    await asyncio.to_thread(_stop, broken)
        if self._pool is None:
            raise JudgeFailed("error", "the judge pool is not running")
        try:
            return self._pool.schedule(_contained, (fn, args), timeout=timeout_s)
        except RuntimeError as exc:
            raise JudgeFailed("error", "the judge pool is not running") from exc

    async def _killed(self, future: concurrent.futures.Future[Outcome]) -> None:
        """Cancel a task and wait until pebble has killed the worker running it (if any);
        once the pool is stopping, until ``stop`` has killed them all."""
        started = future.running()
        future.cancel()
        if self._pool is None or self._waiter is None:
            await self._stopped.wait()
            return
        if not started:  # no worker has it: nothing to wait for (one that takes it now dies)
            return
        # pebble notifies waiters of a cancelled running task once its worker is dead.
        loop = asyncio.get_running_loop()
        waited = loop.run_in_executor(self._waiter, concurrent.futures.wait, [future], KILL_WAIT_S)
        _, pending = await waited
        if pending:
            log.warning("a cancelled judgement's worker was not confirmed dead in time")

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
            if self._waiter is not None:
                self._waiter.shutdown(wait=False, cancel_futures=True)


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


def _settled(result: asyncio.Future[Outcome]) -> None:
    """Retrieve an abandoned result, so asyncio does not log it as never retrieved."""
    if not result.cancelled():
        result.exception()


def _below_us() -> set[int]:
    return {pid for pid, _ in descendants(os.getpid())}


def _being_cancelled() -> bool:
    """Whether the current task itself is being cancelled (not only the future it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
