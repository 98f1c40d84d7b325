"""Latency statistics with the formulas stated, so numbers can be checked by hand.

Percentiles use linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
default): for sorted samples ``a[0..n-1]`` the p-th percentile sits at rank ``(n - 1) * p / 100``.

The 95% confidence interval of a quantile q is distribution-free: the number of samples below the
true quantile is Binomial(n, q), so the order statistics ``a[lo]`` and ``a[hi]`` with
``lo = floor(n q - 1.96 sqrt(n q (1-q)))`` and ``hi = ceil(n q + 1.96 sqrt(n q (1-q)))`` cover it
with about 95% probability (normal approximation of the binomial; needs ``n q (1-q) >= 5``).

>>> summarize([1.0, 2.0, 3.0, 4.0])["p50"]
2.5
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
Z95 = 1.959963984540054


def quantile_ci(samples: Sequence[float], q: float, z: float = Z95) -> tuple[float, float] | None:
    """Distribution-free ~95% CI for the q-quantile (0 < q < 1), or None if n is too small."""
    a = np.sort(np.asarray(samples, dtype=float))
    n = len(a)
    spread = z * math.sqrt(n * q * (1 - q))
    if n * q * (1 - q) < 5:
        return None
    lo, hi = math.floor(n * q - spread), math.ceil(n * q + spread)
    if lo < 0 or hi > n - 1:
        return None
    return float(a[lo]), float(a[hi])


def summarize(samples: Sequence[float]) -> dict[str, float | None]:
    """min/mean/std/max, p50/p90/p95/p99 and CIs of the median and p90 (keys ``p50_ci``, ``p90_ci``)."""
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        raise ValueError("no samples to summarize")
    out: dict = {
        "n": int(a.size), "min": float(a.min()), "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "max": float(a.max()),
    }
    for p, v in zip(PERCENTILES, np.percentile(a, PERCENTILES)):
        out[f"p{p}"] = float(v)
    out["p50_ci"] = quantile_ci(a, 0.5)
    out["p90_ci"] = quantile_ci(a, 0.9)
    return out
