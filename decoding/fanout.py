"""Several engine requests at once, merged into one stream of arrivals; each can be aborted alone.

An adaptive vote needs to stop one sample without stopping the others. The ``Engine`` protocol
aborts a whole engine request when its generator is closed, so each sample that may be stopped
alone is its own request (a ``Lane`` of ``n=1``), and a lane of ``n=N`` serves a vote that never
stops early. Entering the ``async with`` block sends every lane's request; each lane is pumped by
its own task into one queue, which holds at most one arrival per lane (a lane waits while the
caller is busy, so what the caller sees is never far behind the engine); ``arrivals`` waits for
the next chunks (bounded by a deadline), ``abort`` closes chosen lanes (the engine stops
generating their tokens), and leaving the block closes every lane still open, whatever happened.
Each lane's task is cancelled once and its close runs to its end (``decoding.cancelling``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from decoding.cancelling import cancel_and_wait
from decoding.engine import Engine, Prompt, SamplingSpec
from decoding.samples import GenerationChunk


@dataclass(frozen=True)
class Lane:
    """One engine request, for the samples ``first`` to ``first + spec.n - 1``."""

    first: int
    spec: SamplingSpec

    @property
    def indices(self) -> range:
        """The request's samples, by their index in the vote."""
        return range(self.first, self.first + self.spec.n)


@dataclass(frozen=True)
class Arrival:
    """What a lane produced: a chunk, or (``chunk`` None) the end of its request."""

    lane: Lane
    chunk: GenerationChunk | None
    error: Exception | None = None


class Fanout:
    """Runs lanes concurrently on one engine and prompt; see the module docstring."""

    def __init__(
        self, engine: Engine, prompt: Prompt, lanes: Sequence[Lane], *, stream: bool
    ) -> None:
        self._engine = engine
        self._prompt = prompt
        self._lanes = list(lanes)
        self._stream = stream
        self._queue: asyncio.Queue[Arrival] = asyncio.Queue(maxsize=max(1, len(self._lanes)))
        self._tasks: dict[Lane, asyncio.Task[None]] = {}
        self._open: set[Lane] = set()

    @property
    def open(self) -> bool:
        """Whether some lane has not ended yet (nor been aborted)."""
        return bool(self._open)

    @property
    def started(self) -> int:
        """Engine requests sent."""
        return len(self._lanes)

    async def _pump(self, lane: Lane) -> None:
        chunks = self._engine.generate(self._prompt, lane.spec, stream=self._stream)
        try:
            async for chunk in chunks:
                await self._queue.put(Arrival(lane, chunk))
            await self._queue.put(Arrival(lane, None))
        except Exception as exc:  # the engine's failure is the caller's: handed over as data
            await self._queue.put(Arrival(lane, None, exc))
        finally:
            await chunks.aclose()

    async def arrivals(self, deadline: float | None) -> list[Arrival]:
        """Everything the open lanes produced since the last call, waiting for at least one
        arrival until ``deadline`` (loop time; ``TimeoutError`` past it). Raises a lane's error."""
        found: list[Arrival] = []
        async with asyncio.timeout_at(deadline):
            found.append(await self._queue.get())
        while not self._queue.empty():
            found.append(self._queue.get_nowait())
        kept = [a for a in found if a.lane in self._open]  # aborted lanes are over
        for arrival in kept:
            if arrival.error is not None:
                raise arrival.error
            if arrival.chunk is None:
                self._open.discard(arrival.lane)
        return kept

    async def abort(self, lanes: Iterable[Lane]) -> None:
        """Close these lanes' engine requests and wait until they are closed."""
        tasks = []
        for lane in lanes:
            self._open.discard(lane)
            task = self._tasks.pop(lane, None)
            if task is not None:
                tasks.append(task)
        await cancel_and_wait(tasks)  # each lane's close runs to its end, however often we are
        # cancelled meanwhile (``asyncio.gather`` would pass each cancel on and cut the close)

    async def __aenter__(self) -> Fanout:
        for lane in self._lanes:
            self._open.add(lane)
            self._tasks[lane] = asyncio.create_task(self._pump(lane), name=f"lane-{lane.first}")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.abort(list(self._tasks))
