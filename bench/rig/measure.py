"""Timing requests side by side: one call, a burst of concurrent clients, percentiles.

The ``Switcher`` is what keeps an interleaved comparison fair on a small CPU: two vLLM CPU
engines spin their OpenMP threads after a step, so the first request after the *other* engine
served costs about a second more. Before a request goes to a different engine than the last
one, it waits ``pause_s`` (1.5 s by default).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from bench.rig.systems import System

REQUEST_TIMEOUT_S = 600.0
T = TypeVar("T")


@dataclass
class Call:
    """One answered request: status, wall time, tokens, and the body for checks."""

    status: int
    seconds: float
    completion_tokens: int
    payload: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 200 with a JSON body."""
        return self.status == 200 and self.payload is not None and self.error is None


async def call(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Call:
    """POST ``body``; the wall time from the first byte sent to the last byte read."""
    began = time.perf_counter()
    try:
        response = await client.post(path, json=body)
    except httpx.HTTPError as exc:
        return Call(0, time.perf_counter() - began, 0, None, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - began
    try:
        payload = response.json()
    except ValueError:
        return Call(response.status_code, seconds, 0, None, response.text[:200])
    usage = payload.get("usage") if isinstance(payload, dict) else None
    tokens = int(usage.get("completion_tokens") or 0) if isinstance(usage, dict) else 0
    error = None if response.status_code == 200 else str(payload)[:300]
    return Call(response.status_code, seconds, tokens, payload, error)


def client_for(system: System, connections: int = 64) -> httpx.AsyncClient:
    """A pooled client for one system, keep-alive, generous timeout."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=system.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits)


@dataclass
class Switcher:
    """Pauses before a request that goes to another engine than the previous one did."""

    pause_s: float = 1.5
    last_engine: str | None = None
    pauses: int = 0

    async def to(self, system: System) -> None:
        """Wait if ``system`` runs on a different engine from the last one used."""
        if self.last_engine is not None and system.engine != self.last_engine:
            self.pauses += 1
            await asyncio.sleep(self.pause_s)
        self.last_engine = system.engine


@dataclass
class Burst:
    """``clients`` concurrent clients, each sending ``per_client`` requests back to back."""

    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens of the successful calls over the burst's wall time."""
        tokens = sum(c.completion_tokens for c in self.calls if c.ok)
        return tokens / self.seconds if self.seconds > 0 else 0.0


async def burst(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    *,
    clients: int,
    per_client: int,
) -> Burst:
    """Run the burst; its wall time spans the first request sent to the last answer."""
    result = Burst()

    async def one_client() -> None:
        for _ in range(per_client):
            result.calls.append(await call(client, path, body))

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    result.seconds = time.perf_counter() - began
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile by nearest rank (with few values, p99 is the maximum: honest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median, NaN when nothing was measured."""
    return statistics.median(values) if values else math.nan


def ratio(value: float, base: float) -> float:
    """``value / base``, NaN when either is missing."""
    if math.isnan(value) or math.isnan(base) or base == 0:
        return math.nan
    return value / base


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """The systems (or configs) in a different order each round, so none is always first."""
    shift = round_index % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


class Deadline:
    """The run's time budget: measurement stops scheduling work once it has passed."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._end = time.monotonic() + budget_s
        self.hit = False

    def passed(self) -> bool:
        """True (and remembered) once the budget is spent."""
        if time.monotonic() >= self._end:
            self.hit = True
        return self.hit
