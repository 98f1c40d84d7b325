"""Latency statistics against Python's statistics module and hand-computed values (oracles), and Hypothesis properties."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.perf.stats import quantile_ci, summarize

samples = st.lists(st.floats(min_value=0.001, max_value=1e4, allow_nan=False), min_size=2, max_size=400)


@given(samples)
@settings(max_examples=60, deadline=None)
def test_summary_matches_the_statistics_module(xs):
    """Oracle: Python's own statistics module (its 'inclusive' quantiles are the linear
    interpolation between order statistics that numpy's default percentile also uses)."""
    s = summarize(xs)
    cuts = statistics.quantiles(xs, n=100, method="inclusive")  # cuts[p - 1] is the p-th percentile
    for p in (50, 90, 95, 99):
        assert s[f"p{p}"] == pytest.approx(cuts[p - 1]), f"p{p}: {s[f'p{p}']} vs {cuts[p - 1]}"
    assert s["mean"] == pytest.approx(statistics.fmean(xs)) and s["std"] == pytest.approx(statistics.stdev(xs))
    assert (s["n"], s["min"], s["max"]) == (len(xs), min(xs), max(xs))


def test_summary_by_hand():
    s = summarize([4.0, 1.0, 10.0, 3.0, 2.0])  # sorted 1 2 3 4 10; percentile p sits at rank p/100 * 4
    assert (s["p50"], s["mean"], s["std"]) == (3.0, 4.0, math.sqrt(12.5))  # (9+4+1+0+36)/4
    assert s["p90"] == pytest.approx(7.6)  # rank 3.6: 4 + 0.6 * (10 - 4)
    assert s["p99"] == pytest.approx(9.76)  # rank 3.96: 4 + 0.96 * 6


@given(samples)
@settings(max_examples=60, deadline=None)
def test_ci_brackets_the_estimate(xs):
    for q in (0.5, 0.9):
        ci = quantile_ci(xs, q)
        if ci is not None:
            assert ci[0] <= np.quantile(xs, q) <= ci[1], f"q={q}: {ci} does not bracket {np.quantile(xs, q)}"


def test_ci_order_statistics_by_hand():
    xs = list(range(100))  # sorted already: a[k] = k
    lo, hi = quantile_ci(xs, 0.5)
    spread = 1.959963984540054 * math.sqrt(100 * 0.25)  # 9.8
    assert (lo, hi) == (math.floor(50 - spread), math.ceil(50 + spread)) == (40, 60)
    assert quantile_ci(xs[:10], 0.9) is None  # n q (1-q) = 0.9 < 5: too few samples


def test_ci_covers_true_median_about_95_percent():
    rng = np.random.default_rng(1)
    hits = sum(lo <= 1.0 <= hi for lo, hi in (quantile_ci(rng.lognormal(0, 0.5, 200), 0.5) for _ in range(400)))
    assert 0.91 <= hits / 400 <= 0.99, f"coverage {hits / 400:.3f}, expected about 0.95"


def test_empty_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        summarize([])
