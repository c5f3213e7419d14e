"""Cancelling the tasks that hold engine requests: each once, then waiting until they ended.

A task that holds an engine request closes it as it ends, and that close may itself wait: the
upstream engine's HTTP client takes a lock before it closes the connection, vLLM sends the abort
to its engine core. A second cancel that lands during the close interrupts it, and the engine
goes on generating for nobody. Second cancels do come: Starlette runs a streamed response body
inside an anyio cancel scope, which cancels that task again on every turn of the event loop
until it ends, and ``asyncio.gather`` passes every cancel of its caller on to the tasks it waits
for. So ``cancel_and_wait`` cancels each task once and waits with ``asyncio.wait``, which passes
nothing on; a cancel of the caller meanwhile is held until the tasks ended, then raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel each task not yet cancelled (never twice, so its clean-up runs undisturbed) and
    wait until every one ended, whatever cancels the caller meanwhile; then raise the caller's
    cancellation, if one came. The tasks' own errors are not raised here (as
    ``gather(..., return_exceptions=True)`` would not): whoever needs them reads them."""
    tasks = list(tasks)
    for task in tasks:
        if not task.done() and not (isinstance(task, asyncio.Task) and task.cancelling()):
            task.cancel()
    interrupted: asyncio.CancelledError | None = None
    while pending := [task for task in tasks if not task.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError as exc:  # checked again: even a done task takes a turn
            interrupted = exc
    for task in tasks:
        if not task.cancelled():
            task.exception()  # marked as seen, so asyncio does not log it as lost
    if interrupted is not None:
        raise interrupted
