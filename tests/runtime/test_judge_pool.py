"""The judge pool: time limits kill, memory limits hold, cancelling kills, stop kills all.

A pid that is gone is checked right after the call that should have killed it returns (no
polling): ``run`` and ``stop`` return only once the workers they killed are dead.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from decoding.judge import JudgeFailed
from decoding.symbolic import judge_formula, warm_up
from server.runtime.judge_pool import JudgePool
from tests.runtime import worker_tasks

TIMEOUT_S = 30.0  # the pools' per-task limit: generous, so a loaded machine fails nothing
SHORT_S = 0.5  # the limit of the task whose timeout is the point
MEMORY_MB = 64
PRELOAD = ("server.runtime.judge_warm",)  # as the app has it: workers start warm


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def resident_mb() -> float:
    """This (the server's) process's resident memory."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.fixture
async def pool() -> AsyncIterator[JudgePool]:
    """Two workers, short limits; stopped after the test."""
    started = JudgePool(2, TIMEOUT_S, MEMORY_MB, warm_up=warm_up, preload=PRELOAD)
    await started.start()
    yield started
    await started.stop()


async def spinning(pool: JudgePool, tmp_path: Path, name: str) -> tuple[asyncio.Task[None], int]:
    """A task spinning in a worker (no time limit), and that worker's pid once it runs."""
    pid_file = tmp_path / name
    ready = asyncio.Event()

    async def watch() -> None:
        while not pid_file.exists() or not pid_file.read_text():  # noqa: ASYNC110 - a file
            await asyncio.sleep(0.01)
        ready.set()

    task = asyncio.create_task(pool.run(worker_tasks.spin, str(pid_file), timeout_s=3600))
    await asyncio.wait_for(watch(), 30)
    await ready.wait()
    return task, int(pid_file.read_text())


async def test_workers_are_clean_and_limited(pool: JudgePool) -> None:
    assert await pool.run(os.getppid) == pool.server_pid != os.getpid()  # forked by the server
    limit = await pool.run(worker_tasks.address_space_limit)
    assert 0 < limit < 2**40, "the address space is capped"


async def test_a_task_past_its_time_limit_is_killed_and_the_pool_serves_on(
    pool: JudgePool, tmp_path: Path
) -> None:
    pid_file = tmp_path / "slow"
    with pytest.raises(JudgeFailed) as failed:
        await pool.run(worker_tasks.spin, str(pid_file), timeout_s=SHORT_S)
    assert failed.value.reason == "timeout"
    assert not alive(int(pid_file.read_text()))
    assert await pool.run(divmod, 7, 2) == (3, 1)
    assert await pool.run(os.getpid) != int(pid_file.read_text())


async def test_a_memory_hog_fails_at_the_limit_in_its_worker(pool: JudgePool) -> None:
    before = resident_mb()
    assert await pool.run(worker_tasks.hog, MEMORY_MB // 4) == MEMORY_MB // 4 * 2**20
    with pytest.raises(JudgeFailed) as failed:
        await pool.run(worker_tasks.hog, 16 * MEMORY_MB)
    assert failed.value.reason == "too_large"
    assert resident_mb() - before < MEMORY_MB, "the hog's memory never reached the server"
    assert await pool.run(divmod, 7, 2) == (3, 1)


async def test_cancelling_the_caller_kills_its_busy_worker(pool: JudgePool, tmp_path: Path) -> None:
    task, pid = await spinning(pool, tmp_path, "cancelled")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pid), "run returned only after the worker was killed"
    assert await pool.run(divmod, 9, 4) == (2, 1)


async def test_stop_kills_every_worker_and_fails_the_waiting(
    pool: JudgePool, tmp_path: Path
) -> None:
    (first, a), (second, b) = [await spinning(pool, tmp_path, n) for n in ("a", "b")]
    queued = asyncio.create_task(pool.run(divmod, 1, 1))  # no free worker: it waits
    await pool.stop()
    assert not alive(a) and not alive(b)
    for task in (first, second, queued):
        with pytest.raises(JudgeFailed) as failed:
            await task
        assert failed.value.reason == "error"
    with pytest.raises(JudgeFailed):
        await pool.run(divmod, 1, 1)


@pytest.mark.parametrize(
    ("kind", "reason"), [("value", "error"), ("memory", "too_large"), ("recursion", "too_large")]
)
async def test_failures_become_verdicts(pool: JudgePool, kind: str, reason: str) -> None:
    with pytest.raises(JudgeFailed) as failed:
        await pool.run(worker_tasks.fail, kind)
    assert failed.value.reason == reason


async def test_an_exception_the_server_cannot_unpickle_does_not_break_the_pool(
    pool: JudgePool,
) -> None:
    with pytest.raises(JudgeFailed) as failed:
        await pool.run(worker_tasks.raise_odd)
    assert failed.value.reason == "error" and "Odd" in str(failed.value)
    assert await pool.run(divmod, 7, 2) == (3, 1)


async def test_a_worker_killed_from_outside_is_replaced() -> None:
    pool = JudgePool(1, TIMEOUT_S, MEMORY_MB)
    await pool.start()
    try:
        pid = await pool.run(os.getpid)
        os.kill(pid, signal.SIGKILL)  # say, the kernel's OOM killer, while the worker idles
        answers = {await pool.run(os.getpid) for _ in range(3)}
        assert pid not in answers
    finally:
        await pool.stop()


async def test_a_hostile_formula_is_a_verdict_not_a_hang(pool: JudgePool) -> None:
    with pytest.raises(JudgeFailed) as failed:
        await pool.run(judge_formula, "9^{9^{9^{9}}}", timeout_s=1.0)
    assert failed.value.reason in ("timeout", "too_large")
    judged = await pool.run(judge_formula, "\\frac{\\sqrt{2}}{2}")
    assert judged is not None and judged.key == "sym:sqrt(2)/2"
