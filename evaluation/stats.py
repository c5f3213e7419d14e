"""Small exact statistics: Wilson score intervals and the exact McNemar test.

- Wilson (1927): for k successes in n trials, the 95% interval is
  (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964; it stays inside [0, 1]
  and behaves at p = 0 or 1, where the normal interval collapses.
- McNemar, exact: two systems scored on the same items differ only on discordant items
  (b: only A right, c: only B right). Under "no difference" each discordant item is a fair coin,
  so the two-sided p-value is min(1, 2 · P(Binomial(b + c, 1/2) <= min(b, c))), computed with
  integers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

Z95 = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion; (0, 1) when there are no trials."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    scale = 1 + z2 / trials
    low, high = (centre - spread) / scale, (centre + spread) / scale
    return max(0.0, min(low, p)), min(1.0, max(high, p))  # rounding must not exclude p


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, j) for j in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


@dataclass(frozen=True)
class Paired:
    """Two systems on their shared items: both right, only A, only B, both wrong, p-value."""

    a: str
    b: str
    items: int
    both: int
    only_a: int
    only_b: int
    neither: int
    p_value: float


def compare(a: str, b: str, right_a: Mapping[str, bool], right_b: Mapping[str, bool]) -> Paired:
    """McNemar on the items both systems were scored on."""
    shared = sorted(set(right_a) & set(right_b))
    pairs = [(right_a[i], right_b[i]) for i in shared]
    both = sum(1 for x, y in pairs if x and y)
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    neither = len(pairs) - both - only_a - only_b
    return Paired(a, b, len(pairs), both, only_a, only_b, neither, mcnemar_exact(only_a, only_b))
