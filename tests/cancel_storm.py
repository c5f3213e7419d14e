"""A caller cancelled on every turn of the event loop, as anyio's cancel scope cancels a
Starlette response body until it ends: the storm that cut clean-ups short before
``decoding.cancelling``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


async def cancel_on_every_turn(caller: asyncio.Task[Any], turns: int = 100) -> None:
    """Cancel ``caller`` on each turn of the loop until it ends (at most ``turns``), then check
    that it ended cancelled."""
    for _ in range(turns):
        await asyncio.sleep(0)
        if caller.done():
            break
        caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
