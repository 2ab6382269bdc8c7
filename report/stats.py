"""95 % confidence intervals for the rollout's cohort comparison (docs/report.md says why these).

* a **share** (k of n: replied within 7 days, stopped): the Wilson score interval. It stays inside 0-100 %,
  is sensible at k = 0 or k = n and with small n (a canary of a few dozen deals), where the textbook
  normal interval collapses to a width of zero or leaves the range;
* a **rate** (x events over an exposure: tasks per rep-day): the score interval for a Poisson mean, the
  same idea for counts (never below zero, sensible at x = 0);
* a **median** (days to the next customer signal): the distribution-free interval between two order
  statistics, ranks ``n/2 ± 1.96·√n/2`` (the normal approximation of the binomial behind them). Days
  are skewed (most customers answer within days, some after months): a median with this interval
  assumes no distribution, where a mean with a t-interval would be pulled by the tail.

Pure arithmetic: no scipy needed for these three.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float | None  # None: nothing to estimate from (n = 0)
    low: float | None
    high: float | None
    n: int  # the observations behind it (the denominator, the exposure or the sample)


def wilson(k: int, n: int, z: float = Z95) -> Estimate:
    """The share k/n with its Wilson score interval."""
    if n <= 0:
        return Estimate(None, None, None, 0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def poisson_rate(x: int, exposure: float, z: float = Z95) -> Estimate:
    """``x`` events over ``exposure`` units (rep-days) with the score interval for a Poisson mean."""
    if exposure <= 0:
        return Estimate(None, None, None, 0)
    centre = x + z * z / 2
    half = z * math.sqrt(x + z * z / 4)
    return Estimate(x / exposure, max(0.0, centre - half) / exposure, (centre + half) / exposure, x)


def median_interval(values: Sequence[float], z: float = Z95) -> Estimate:
    """The median with the distribution-free interval between order statistics (ranks n/2 ± z·√n/2)."""
    n = len(values)
    if n == 0:
        return Estimate(None, None, None, 0)
    ordered = sorted(values)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    low_rank = max(1, math.floor(n / 2 - z * math.sqrt(n) / 2))
    high_rank = min(n, math.ceil(1 + n / 2 + z * math.sqrt(n) / 2))
    return Estimate(median, ordered[low_rank - 1], ordered[high_rank - 1], n)
