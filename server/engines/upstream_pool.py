"""The upstream replicas, their health, and which one serves the next request.

A request goes to the healthy replica with the fewest requests in flight (ties: round-robin), so
load spreads while each ``n=N`` request stays whole on one replica and shares its prefix cache.
A replica that fails a request leaves the rotation at once; the health checker brings it back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from server.errors import EngineUnavailable

log = logging.getLogger(__name__)


def base_url(url: str) -> str:
    """A replica's root URL: no trailing slash and no ``/v1`` (OpenAI clients' base_url form)."""
    url = url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def redact(url: str) -> str:
    """The URL without ``user:password@``, for logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@dataclass
class Replica:
    """One OpenAI-compatible upstream server and what Quorum knows about it."""

    url: str
    healthy: bool = False
    in_flight: int = 0
    model: str | None = None
    max_model_len: int | None = None
    version: str | None = None
    # Whether vLLM's /tokenize answers here (context checks); None until tried.
    tokenize: bool | None = None
    last_error: str | None = None

    @property
    def usable(self) -> bool:
        """Healthy and its model known, so a request can be addressed to it."""
        return self.healthy and self.model is not None


class ReplicaPool:
    """Replica selection and health state; the engine does the I/O."""

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError("at least one upstream URL is required")
        self.replicas = [Replica(u) for u in dict.fromkeys(base_url(u) for u in urls)]
        self._turn = 0

    def pick(self, exclude: set[str] | frozenset[str] = frozenset()) -> Replica:
        """The usable replica with the fewest requests in flight; round-robin among equals."""
        count = len(self.replicas)
        candidates = [
            self.replicas[(self._turn + i) % count]
            for i in range(count)
            if self.replicas[(self._turn + i) % count].usable
            and self.replicas[(self._turn + i) % count].url not in exclude
        ]
        if not candidates:
            log.warning("no upstream replica is usable: %s", self.describe())
            raise EngineUnavailable(
                f"No upstream replica is healthy ({count} configured); retry shortly.",
                headers={"Retry-After": "1"},
            )
        chosen = min(candidates, key=lambda r: r.in_flight)  # min keeps the first of equals
        self._turn = (self.replicas.index(chosen) + 1) % count
        return chosen

    @contextmanager
    def track(self, replica: Replica) -> Iterator[Replica]:
        """Count a request in flight on ``replica`` for as long as the block runs."""
        replica.in_flight += 1
        try:
            yield replica
        finally:
            replica.in_flight -= 1

    def mark_failed(self, replica: Replica, reason: str) -> None:
        """Take a replica out of rotation until a health probe succeeds again."""
        if replica.healthy:
            log.warning("upstream %s marked unhealthy: %s", redact(replica.url), reason)
        replica.healthy = False
        replica.last_error = reason

    def mark_healthy(self, replica: Replica) -> None:
        """Put a replica (back) into rotation."""
        if not replica.healthy:
            log.info("upstream %s is healthy", redact(replica.url))
        replica.healthy = True
        replica.last_error = None

    def describe(self) -> str:
        """Each replica's state in one line, for logs and start-up errors (no credentials)."""
        return "; ".join(
            f"{redact(r.url)} {'up' if r.usable else 'down'}"
            + (f" ({r.last_error})" if r.last_error and not r.usable else "")
            for r in self.replicas
        )
