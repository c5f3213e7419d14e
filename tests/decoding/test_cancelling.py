"""``cancel_and_wait``: each task cancelled once, waited for to its end even while the caller is
cancelled again and again, then the caller's cancellation raised; the tasks' errors not."""

from __future__ import annotations

import asyncio

import pytest

from decoding.cancelling import cancel_and_wait
from tests.cancel_storm import cancel_on_every_turn

CLEAN_UP_TURNS = 5


async def cleans_up_slowly(log: list[str]) -> None:
    """Runs until cancelled, then takes a few turns of the loop to clean up."""
    try:
        await asyncio.Event().wait()
    finally:
        for _ in range(CLEAN_UP_TURNS):
            await asyncio.sleep(0)
        log.append("cleaned up")


async def test_the_tasks_clean_up_even_while_the_caller_is_cancelled_again() -> None:
    log: list[str] = []
    tasks = [asyncio.create_task(cleans_up_slowly(log)) for _ in range(3)]
    await asyncio.sleep(0)  # the tasks start
    caller = asyncio.create_task(cancel_and_wait(tasks))
    await cancel_on_every_turn(caller)
    assert log == ["cleaned up"] * 3
    assert [t.cancelling() for t in tasks] == [1, 1, 1], "each cancelled once, never again"


async def finishes(log: list[str]) -> None:
    log.append("finished")


async def fails(log: list[str]) -> None:
    raise ValueError("the task's own error")


@pytest.mark.parametrize(
    ("kind", "logged", "cancels"),
    [
        ("running", ["cleaned up"], 1),
        ("cancelled already", ["cleaned up"], 1),  # not cancelled a second time
        ("not started yet", [], 1),  # cancelled before its first step: nothing to clean up
        ("finished", ["finished"], 0),
        ("failed", [], 0),  # its error is its own: not raised here
    ],
)
async def test_each_kind_of_task_ends_without_a_second_cancel(
    kind: str, logged: list[str], cancels: int
) -> None:
    log: list[str] = []
    work = {"finished": finishes, "failed": fails}.get(kind, cleans_up_slowly)
    task = asyncio.create_task(work(log))
    if kind != "not started yet":
        await asyncio.sleep(0)  # its first step
    if kind == "cancelled already":
        task.cancel()
    await cancel_and_wait([task])
    assert task.done() and log == logged and task.cancelling() == cancels
