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


# --- the run as the unit: a CI of a ratio that sees run-to-run variation ----------------------

def t_quantile(p: float, df: float) -> float:
    """The p-quantile (0.5 < p < 1) of Student's t with ``df`` (> 0, may be fractional) degrees of
    freedom, by integrating its density (no scipy needed); ``t_quantile(0.975, 4)`` is 2.776.

    >>> round(t_quantile(0.975, 1), 2), round(t_quantile(0.975, 10), 3)
    (12.71, 2.228)
    """
    if not 0.5 < p < 1 or not df > 0:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df > 0, got p={p}, df={df}")
    df = min(df, 1e4)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    hi = 10.0
    while True:  # widen the grid until it holds the quantile (df=1 at p=0.975: 12.7)
        x = np.linspace(0.0, hi, 20_001)
        pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
        cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
        if cdf[-1] >= p - 0.5 or hi > 1e6:
            return float(np.interp(p - 0.5, cdf, x))
        hi *= 4


def _run_median_draws(run: np.ndarray, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Medians of ``size`` resamples (with replacement) of one run, drawn exactly without building them.

    A resample of n values from a run is ``F_n^-1(U)`` for n uniforms, and ``F_n^-1`` (the run's
    sorted values as a step function) keeps order, so its m-th smallest value is ``F_n^-1`` of the
    m-th smallest uniform, which is Beta(m, n - m + 1): O(1) per resample, whatever n (a
    microsecond model's run holds 100 000 samples). m = ceil(n / 2), the lower median for even n.
    """
    a = np.sort(run)
    n = a.size
    m = (n + 1) // 2
    u = rng.beta(m, n - m + 1, size)
    return a[np.minimum((u * n).astype(np.int64), n - 1)]


def hierarchical_log_estimate(runs: Sequence[Sequence[float]], *, n_boot: int = 2000,
                              rng: np.random.Generator) -> tuple[float, float]:
    """A side's figure and its spread: ``log`` of the geometric mean of its runs' medians, and the
    standard error of that log by a two-level bootstrap (resample the runs, then the samples within
    each run picked), with the run level's bootstrap bias ``(k - 1) / k`` on the variance undone."""
    arrays = [np.asarray(r, dtype=float) for r in runs]
    k = len(arrays)
    point = float(np.mean([np.log(np.median(a)) for a in arrays]))
    # draws[i, b, j]: the median of a fresh resample of run i, for position j of bootstrap replicate b
    draws = np.log(np.stack([_run_median_draws(a, (n_boot, k), rng) for a in arrays]))
    pick = rng.integers(0, k, (n_boot, k))  # the runs each replicate is built from
    stat = draws[pick, np.arange(n_boot)[:, None], np.arange(k)[None, :]].mean(axis=1)
    return point, float(np.std(stat, ddof=1) * math.sqrt(k / (k - 1)))


def hierarchical_ratio_ci(runs_a: Sequence[Sequence[float]], runs_b: Sequence[Sequence[float]], *,
                          n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
                          apart: bool = False) -> tuple[float, tuple[float, float]]:
    """Speed ratio of A to B (geometric means of the runs' medians, > 1: B is faster) and its CI,
    with the **run** as the unit of replication; each side needs at least 2 runs.

    Why: the latency samples of one process are not independent draws of "the" latency — the
    process itself (where the allocator put the weights, which cores, what else ran that second)
    moves its whole distribution. On a shared VM the p50 of ``mobilenetv2-224`` varies ~9% between
    processes while a run's own CI is +-0.3%, so a bootstrap over the samples of one run per side
    called 155 of 171 A/A pairs different. pyperf treats runs (worker processes) as the unit for
    this reason, and Kalibera & Jones ("Rigorous benchmarking in reasonable time", ISMM 2013)
    estimate the CI of a ratio by a hierarchical bootstrap: resample runs, then samples within runs.

    How: each side's log figure and its standard error come from :func:`hierarchical_log_estimate`
    (run level resampled, then within-run medians drawn exactly, :func:`_run_median_draws`). With
    a handful of runs a percentile bootstrap is too narrow (it sees the run variance times
    ``(k-1)/k`` and has normal tails), so the interval is ``log ratio +- t * se``: the two sides'
    variances add, ``t`` is Student's quantile with ``min(k_a, k_b) - 1`` degrees of freedom (the
    bootstrap-standard-error t interval, with Hsu's conservative choice of degrees of freedom for
    unequal variances: it keeps the level whatever the variance ratio, where Welch–Satterthwaite's
    df gave 5.25% false A/A verdicts over 400 synthetic pairs of 5 runs — right at the 5% the
    verdicts promise, with nothing to spare for real runs' heavier-than-normal process effects).
    The within-run resampling makes it slightly more conservative still. Checked on synthetic runs with known between-run variance
    (tests/test_stats.py): A/A false "different" <= 5%, a known ratio covered >= 90%.

    ``apart=True``: the sides were measured at different times (two separate commands) rather than
    taking turns. The machine's state then moves with the side (on the shared development VM its
    speed drifts 3-7% over seconds, unseen by any in-guest sensor) and no number of runs inside one
    command shows that shift, so each side's state counts as **one** draw whose spread is taken to
    be the run-to-run spread: each side's variance is one run's (``se**2 * k``), not that of the
    mean of its ``k`` runs. Wider, and calibrated against separate-command A/A pairs in
    benchmarks/trust.py; a real 2x still stands out.

    >>> rng = np.random.default_rng(1)
    >>> a = [rng.lognormal(np.log(2.0) + rng.normal(0, .02), .1, 300) for _ in range(5)]
    >>> b = [rng.lognormal(np.log(1.0) + rng.normal(0, .02), .1, 300) for _ in range(5)]
    >>> ratio, (lo, hi) = hierarchical_ratio_ci(a, b)
    >>> lo < 2.0 < hi, round(ratio, 1)
    (True, 2.0)
    """
    ka, kb = len(runs_a), len(runs_b)
    if ka < 2 or kb < 2:
        raise ValueError(f"hierarchical_ratio_ci needs >= 2 runs per side, got {ka} and {kb}")
    rng = np.random.default_rng(seed)
    la, sa = hierarchical_log_estimate(runs_a, n_boot=n_boot, rng=rng)
    lb, sb = hierarchical_log_estimate(runs_b, n_boot=n_boot, rng=rng)
    va, vb = (sa * sa * ka, sb * sb * kb) if apart else (sa * sa, sb * sb)
    half = t_quantile(1 - alpha / 2, min(ka, kb) - 1) * math.sqrt(va + vb)  # Hsu's conservative df
    log_ratio = la - lb
    return math.exp(log_ratio), (math.exp(log_ratio - half), math.exp(log_ratio + half))
