"""Dropping a fan-out closes every lane's engine request to its end, even when the task holding
the fan-out is cancelled again and again while the lanes close (as Starlette's cancel scope does
to a streamed response), and whatever each lane was doing when the vote was dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal

import pytest

from decoding.engine import EngineInfo, Prompt, SamplingSpec, TextPrompt
from decoding.fanout import Fanout, Lane
from decoding.samples import GenerationChunk, SampleDelta

LANES = [Lane(i, SamplingSpec(seed=i)) for i in range(4)]
CLOSE_TURNS = 3  # turns of the event loop an engine request takes to close
MAX_TURNS = 1000  # far more turns than closing takes
Where = Literal["awaiting the engine", "handing over a chunk"]


@dataclass
class SlowToClose:
    """An engine whose requests never end by themselves and take a few turns of the loop to
    close, as an HTTP connection does (its client takes a lock first) or vLLM's abort."""

    where: Where
    started: int = 0
    closed: int = 0
    running: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(model="slow", max_model_len=64, engine="test", version="0")

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        self.started += 1
        if self.started == len(LANES):
            self.running.set()
        try:
            while True:
                if self.where == "awaiting the engine":
                    await asyncio.Event().wait()  # a response head that never comes
                yield GenerationChunk(1, [SampleDelta(0, "x", 1)])  # the queue fills, then waits
        finally:
            for _ in range(CLOSE_TURNS):
                await asyncio.sleep(0)
            self.closed += 1


async def hold_a_vote(engine: SlowToClose) -> None:
    async with Fanout(engine, TextPrompt("q"), LANES, stream=True) as fan:
        if engine.where == "handing over a chunk":
            await fan.arrivals(None)
        await asyncio.Event().wait()  # the vote goes on until it is dropped


async def drop(task: asyncio.Task[None], *, again: bool) -> None:
    """Cancel the task; with ``again``, once more on every turn of the loop until it ended
    (as anyio's cancel delivery does; a bounded number of turns, so a regression fails)."""
    task.cancel()
    for _ in range(MAX_TURNS if again else 0):
        if task.done():
            break
        await asyncio.sleep(0)  # one turn of the event loop
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("where", ["awaiting the engine", "handing over a chunk"])
@pytest.mark.parametrize("again", [False, True], ids=["cancelled once", "cancelled again"])
async def test_a_dropped_vote_closes_every_lane_to_the_end(where: Where, again: bool) -> None:
    engine = SlowToClose(where)
    task = asyncio.create_task(hold_a_vote(engine))
    await engine.running.wait()
    await drop(task, again=again)
    assert engine.closed == engine.started == len(LANES), "every engine request closed"


async def test_aborting_some_lanes_closes_them_and_keeps_the_others() -> None:
    engine = SlowToClose("handing over a chunk")
    async with Fanout(engine, TextPrompt("q"), LANES, stream=True) as fan:
        await engine.running.wait()
        await fan.abort(LANES[:2])
        assert engine.closed == 2 and fan.open
        assert {a.lane for a in await fan.arrivals(None)} <= set(LANES[2:])
    assert engine.closed == len(LANES)
