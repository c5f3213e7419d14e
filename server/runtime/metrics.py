"""Prometheus metrics, one registry per app: requests, latency, load, rejections, precise votes.

Labels are bounded sets (route templates, modes, status codes, reasons): no prompt text and no
raw paths ever become a label. Precise mode reports each vote through ``observe_precise``, which
finds the metrics of the app serving the current request (a context variable the request's
middleware sets), so services need no handle on the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SAMPLE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
AGREEMENT_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
_M = TypeVar("_M", Counter, Gauge)


# Every family's help text, by name: the one place that says what each metric means.
HELP = {
    "quorum_requests": "HTTP requests by route, mode and status (499: the client went away).",
    "quorum_request_duration_seconds": "Time from request to the last byte of the response.",
    "quorum_time_to_first_byte_seconds": "Time from request to the response's first byte.",
    "quorum_inflight_requests": "Requests being served now (health probes excluded).",
    "quorum_admitted_samples": "Samples admitted and not finished (running or queued).",
    "quorum_admission_capacity_samples": "The admission cap on admitted samples.",
    "quorum_engine_requests_active": "Engine requests open now.",
    "quorum_rejections": "Requests refused before any engine work, by reason.",
    "quorum_aborts": "Requests whose engine work was aborted, by reason.",
    "quorum_ready": "1 while the server accepts work.",
    "quorum_precise_samples_used": "Samples drawn per precise-mode request.",
    "quorum_precise_agreement": "The winning answer's share of votes per precise-mode request.",
    "quorum_precise_abstentions": "Precise-mode requests that abstained.",
    "quorum_judge_fallbacks": "Answers kept as text because judging them met a bound, by "
    "reason (timeout, too_large, error).",
}
ROUTE_MODE = ("route", "mode")


class Metrics:
    """Every metric the server exports, registered on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = self._family(Counter, "quorum_requests", (*ROUTE_MODE, "status"))
        duration = "quorum_request_duration_seconds"
        self.latency = self._histogram(duration, LATENCY_BUCKETS, ROUTE_MODE)
        first_byte = "quorum_time_to_first_byte_seconds"
        self.first_byte = self._histogram(first_byte, LATENCY_BUCKETS, ROUTE_MODE)
        self.inflight = self._family(Gauge, "quorum_inflight_requests")
        self.admitted = self._family(Gauge, "quorum_admitted_samples")
        self.capacity = self._family(Gauge, "quorum_admission_capacity_samples")
        self.engine_active = self._family(Gauge, "quorum_engine_requests_active")
        self.rejections = self._family(Counter, "quorum_rejections", ("reason",))
        self.aborts = self._family(Counter, "quorum_aborts", ("reason",))
        self.ready = self._family(Gauge, "quorum_ready")
        self.precise_samples = self._histogram("quorum_precise_samples_used", SAMPLE_BUCKETS)
        self.precise_agreement = self._histogram("quorum_precise_agreement", AGREEMENT_BUCKETS)
        self.precise_abstentions = self._family(Counter, "quorum_precise_abstentions")
        self.judge_fallbacks = self._family(Counter, "quorum_judge_fallbacks", ("reason",))

    def _family(self, kind: type[_M], name: str, labels: Sequence[str] = ()) -> _M:
        """A counter or gauge family on this registry, with its help text from ``HELP``."""
        return kind(name, HELP[name], labels, registry=self.registry)

    def _histogram(
        self, name: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        """A histogram family on this registry, with its help text from ``HELP``."""
        return Histogram(name, HELP[name], labels, registry=self.registry, buckets=buckets)

    def watch(
        self,
        *,
        admitted: Callable[[], float],
        capacity: float,
        engine_active: Callable[[], float],
        ready: Callable[[], float],
    ) -> None:
        """Gauges read live from their owners at scrape time."""
        self.admitted.set_function(admitted)
        self.capacity.set(capacity)
        self.engine_active.set_function(engine_active)
        self.ready.set_function(ready)

    def observe_precise(
        self,
        samples_used: int,
        agreement: float | None,
        abstained: bool,
        verdicts: Iterable[str | None] = (),
    ) -> None:
        """Record one precise-mode vote, and how judging its samples' answers went."""
        self.precise_samples.observe(samples_used)
        if agreement is not None:
            self.precise_agreement.observe(agreement)
        if abstained:
            self.precise_abstentions.inc()
        for verdict in verdicts:
            if verdict in ("timeout", "too_large", "error"):
                self.judge_fallbacks.labels(verdict).inc()

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


CURRENT: ContextVar[Metrics | None] = ContextVar("quorum_metrics", default=None)


def observe_precise(
    samples_used: int,
    agreement: float | None,
    abstained: bool,
    verdicts: Iterable[str | None] = (),
) -> None:
    """Record one precise-mode vote on the metrics of the app serving this request (no-op
    outside a request)."""
    metrics = CURRENT.get()
    if metrics is not None:
        metrics.observe_precise(samples_used, agreement, abstained, verdicts)
