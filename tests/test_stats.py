"""Latency statistics against numpy (oracle) and Hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.perf.stats import quantile_ci, summarize

samples = st.lists(st.floats(min_value=0.001, max_value=1e4, allow_nan=False), min_size=2, max_size=400)


@given(samples)
@settings(max_examples=60, deadline=None)
def test_summary_matches_numpy(xs):
    s = summarize(xs)
    a = np.asarray(xs)
    for p in (50, 90, 95, 99):
        assert s[f"p{p}"] == pytest.approx(np.percentile(a, p)), f"p{p}: {s[f'p{p}']} vs {np.percentile(a, p)}"
    assert s["mean"] == pytest.approx(a.mean()) and s["std"] == pytest.approx(a.std(ddof=1))
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]


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
