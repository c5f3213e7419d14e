"""Admission control's count: samples running or queued against a fixed capacity.

Work is counted in samples, the engine's unit of work: a chat request with ``n=4`` counts 4, a
precise request with ``samples=8`` counts 8, a completions request counts prompts x n. The
HTTP side (``server.api.admission``) weighs requests and refuses what does not fit.
"""

from __future__ import annotations


class Admission:
    """Samples admitted and not yet finished, against a fixed capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0

    def try_acquire(self, weight: int) -> bool:
        """Admit ``weight`` samples if they fit (a request larger than the whole capacity is
        admitted alone, counted as the capacity)."""
        weight = min(weight, self.capacity)
        if self.in_use + weight > self.capacity:
            return False
        self.in_use += weight
        return True

    def release(self, weight: int) -> None:
        """Give back what ``try_acquire`` took."""
        self.in_use -= min(weight, self.capacity)
