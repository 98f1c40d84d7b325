"""edgekit.perf.comparison: bootstrap ratio CI against the truth and scipy (oracle), verdicts, warnings, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit._errors import EdgekitError, ResultError
from edgekit.perf.comparison import (NOT_INTERLEAVED, SINGLE_RUN, Comparison, bootstrap_ratio_ci, compare, compare_many, comparison_table, labels,
                             load_results)
from edgekit.perf.stats import summarize


def make_result(median_ms=1.0, n=400, sigma=0.1, seed=0, model="mnist", threads=1, **extra) -> dict:
    """A schema-1 result dict whose samples are lognormal with the given true median."""
    samples = (median_ms * np.random.default_rng(seed).lognormal(0.0, sigma, n)).tolist()
    r = {"schema_version": 1, "model": model, "model_sha256": "ab" * 32,
         "config": {"threads": threads, "providers": "cpu", "optimization": "all", "batch_size": 1},
         "cold_start_ms": {"session_ms": 12.0, "first_run_ms": 3.0}, "latency_ms": summarize(samples),
         "throughput_ips": 1e3 / median_ms, "samples_ms": samples, "environment": {}}
    r.update(extra)
    return r


def test_clear_speedup_is_detected_and_ci_brackets_truth():
    base, fast = make_result(1.3, seed=1, threads=1), make_result(1.0, seed=2, threads=2)
    c = compare(base, fast)
    assert c.significant and c.ratio > 1, f"ratio {c.ratio}, CI {c.ci}"
    assert c.ci[0] <= 1.3 <= c.ci[1], f"CI {c.ci} misses the true ratio 1.3"
    assert c.verdict.startswith("mnist threads=2 is 1.") and "x faster than mnist threads=1 (95% CI " in c.verdict, c.verdict


def test_slowdown_reports_reciprocal_factor():
    c = compare(make_result(1.0, seed=1, threads=1), make_result(1.2, seed=2, threads=2))
    assert c.significant and c.ratio < 1, f"ratio {c.ratio}, CI {c.ci}"
    assert "x slower than" in c.verdict, c.verdict
    lo, hi = (float(x) for x in c.verdict.split("CI ")[1].rstrip(")").split("-"))
    assert lo <= 1.2 <= hi, f"slow-down CI {lo}-{hi} misses the true factor 1.2 ({c.verdict})"
    assert lo == pytest.approx(1 / c.ci[1], abs=0.006) and hi == pytest.approx(1 / c.ci[0], abs=0.006)


def test_identical_distributions_no_significant_difference():
    c = compare(make_result(1.0, seed=1, threads=1), make_result(1.0, seed=2, threads=2))
    assert not c.significant, f"ratio {c.ratio}, CI {c.ci}"
    assert c.verdict.startswith("no significant difference (mnist threads=2/mnist threads=1 speed ratio "), c.verdict


def test_deterministic_with_seed():
    a, b = make_result(1.0, seed=1), make_result(1.1, seed=2, threads=2)
    c1, c2, c3 = compare(a, b, seed=7), compare(a, b, seed=7), compare(a, b, seed=8)
    assert c1.ci == c2.ci, f"{c1.ci} vs {c2.ci}"
    assert c1.ci != c3.ci, f"different seeds gave the same CI {c1.ci}"


def test_bootstrap_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a, b = 1.3 * rng.lognormal(0, 0.15, 300), rng.lognormal(0, 0.15, 250)

    def ratio(x, y, axis=-1):
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    kw = dict(statistic=ratio, vectorized=True, paired=False, method="percentile", n_resamples=4000)
    try:
        res = stats.bootstrap((a, b), rng=np.random.default_rng(1), **kw)
    except TypeError:  # scipy < 1.15 spells it random_state
        res = stats.bootstrap((a, b), random_state=np.random.default_rng(1), **kw)
    ours = np.array([bootstrap_ratio_ci(a, b, n_boot=4000, seed=s) for s in range(8)])
    # Both are Monte Carlo estimates of the same percentile-bootstrap endpoints from different
    # random streams, so they may differ by Monte Carlo error only. We measure that error as the
    # spread of our endpoints over 8 seeds and allow 4 of its standard deviations (x sqrt 2 for
    # the difference of two independent estimates), plus 1% of the CI width for the lumpiness
    # of bootstrap medians (they only take sample values).
    width = res.confidence_interval.high - res.confidence_interval.low
    for k, theirs in enumerate((res.confidence_interval.low, res.confidence_interval.high)):
        tol = 4 * np.sqrt(2) * ours[:, k].std(ddof=1) + 0.01 * width
        assert abs(ours[0, k] - theirs) <= tol, f"endpoint {k}: ours {ours[0, k]:.4f} scipy {theirs:.4f} tol {tol:.4f}"


@given(st.floats(0.5, 2.0), st.floats(0.5, 2.0), st.integers(0, 10_000), st.integers(30, 200))
@settings(max_examples=25, deadline=None)
def test_ratio_is_reciprocal_when_swapped(ma, mb, seed, n):
    a, b = make_result(ma, n=n, seed=seed), make_result(mb, n=n, seed=seed + 1, threads=2)
    ab, ba = compare(a, b, n_boot=300), compare(b, a, n_boot=300)
    assert ab.ratio == pytest.approx(1 / ba.ratio, rel=1e-12), f"{ab.ratio} vs 1/{ba.ratio}"
    assert ab.ci[0] <= ab.ci[1], f"CI not ordered: {ab.ci}"


def test_warning_different_devices():
    c = compare(make_result(device={"fingerprint": "aaaa"}), make_result(seed=1, threads=2, device={"fingerprint": "bbbb"}))
    assert any("different devices: aaaa vs bbbb" in w and "mixes device and setting" in w for w in c.warnings), c.warnings
    same = compare(make_result(device={"fingerprint": "aaaa"}), make_result(seed=1, threads=2, device={"fingerprint": "aaaa"}))
    assert same.warnings == [SINGLE_RUN], same.warnings  # only the one-run caveat


def test_warning_suspect_quotes_reasons():
    bad = make_result(seed=1, threads=2, suspect={"is_suspect": True, "reasons": ["CPU throttled to 600 MHz"]})
    c = compare(make_result(), bad)
    assert any("mnist threads=2 is marked suspect: CPU throttled to 600 MHz" in w for w in c.warnings), c.warnings
    assert "warning: mnist threads=2 is marked suspect" in str(c)


def test_warning_same_name_different_sha_and_few_samples():
    other = make_result(seed=1, n=20, threads=2, model_sha256="cd" * 32)
    ws = compare(make_result(), other).warnings
    assert any("both are named 'mnist' but the files differ" in w for w in ws), ws
    assert any("only 20 samples (< 30)" in w for w in ws), ws


def test_compare_many_labels_table_and_to_dict():
    rs = [make_result(1.0, threads=1), make_result(0.8, seed=1, threads=2), make_result(0.7, seed=2, threads=4)]
    cs = compare_many(rs)
    assert [c.other for c in cs] == ["mnist threads=2", "mnist threads=4"] and all(c.baseline == "mnist threads=1" for c in cs)
    d = cs[0].to_dict()
    assert json.loads(json.dumps(d))["verdict"] == cs[0].verdict and d["significant"] is True
    assert comparison_table(cs).row_count == 2
    with pytest.raises(ResultError, match="at least 2 results"):
        compare_many(rs[:1])


def test_labels_fall_back_to_file_stem(tmp_path):
    for name in ("monday", "tuesday"):
        (tmp_path / f"{name}.json").write_text(json.dumps(make_result()))
    rs = load_results([tmp_path / "monday.json", tmp_path / "tuesday.json"])
    assert labels(rs) == ["mnist (monday)", "mnist (tuesday)"], labels(rs)


def test_load_object_and_list(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(make_result()))
    (tmp_path / "sweep.json").write_text(json.dumps([make_result(threads=t) for t in (1, 2)]))
    rs = load_results([tmp_path / "one.json", tmp_path / "sweep.json"])
    assert len(rs) == 3 and rs[2]["config"]["threads"] == 2, [r["config"] for r in rs]
    assert len(load_results(str(tmp_path / "one.json"))) == 1


@pytest.mark.parametrize("content, message", [
    (None, r"no result file at .*missing\.json.*check the path"),
    ("{not json", r"is not JSON .*expected a result saved with"),
    (json.dumps({"model": "m"}), r"is not an edgekit benchmark result: expected keys 'latency_ms' and 'samples_ms', got \['model'\]"),
    (json.dumps([]), r"holds an empty list"),
    (json.dumps([{"latency_ms": {}, "samples_ms": [1.0], "schema_version": 2}]),
     r"item 0 has schema_version 2, this edgekit reads \[1\] — upgrade edgekit"),
    (json.dumps({"latency_ms": {}, "samples_ms": [1.0]}), r"schema_version None, .*re-run the benchmark"),
])
def test_load_errors_teach(tmp_path, content, message):
    path = tmp_path / ("missing.json" if content is None else "r.json")
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResultError, match=message) as e:
        load_results([path])
    assert isinstance(e.value, EdgekitError) and isinstance(e.value, ValueError)


def test_empty_samples_error():
    with pytest.raises(ResultError, match="expected positive latency samples"):
        compare(make_result(), make_result(samples_ms=[]))


def test_comparison_str_is_verdict():
    c = Comparison("A", "B", 1.3, 1.0, 1.31, (1.27, 1.35))
    assert str(c) == "B is 1.31x faster than A (95% CI 1.27-1.35)", str(c)


def fleet_result(board, threads, median_ms, seed, fingerprint="f00d"):
    return make_result(median_ms, seed=seed, threads=threads, device={"fingerprint": fingerprint, "cpu_model": "x"},
                       fleet={"board": board, "label": board, "worker": f"{board}-1", "host": "h"})


def test_devices_side_by_side_each_benchmark_against_the_first_device():
    rs = [fleet_result("pi5", 1, 2.0, 1), fleet_result("pi5", 2, 1.2, 2),
          fleet_result("jetson", 1, 1.0, 3), fleet_result("jetson", 2, 0.6, 4)]
    assert labels(rs) == ["mnist threads=1 @pi5", "mnist threads=2 @pi5", "mnist threads=1 @jetson",
                          "mnist threads=2 @jetson"]
    cs = compare_many(rs)
    assert [(c.baseline, c.other) for c in cs] == [("mnist threads=1 @pi5", "mnist threads=1 @jetson"),
                                                   ("mnist threads=2 @pi5", "mnist threads=2 @jetson")]
    assert all(c.significant and c.ratio > 1.5 and c.warnings == [SINGLE_RUN] for c in cs), [str(c) for c in cs]
    # everything against the first, as for one device, when asked
    assert [c.other for c in compare_many(rs, by_device=False)] == labels(rs)[1:]
    with pytest.raises(ResultError, match="ran on two devices"):
        compare_many(rs[:2] + [fleet_result("jetson", 4, 1.0, 5)], by_device=True)


def test_devices_of_one_name_are_told_apart_by_fingerprint():
    a = make_result(seed=1, device={"fingerprint": "aaaa", "board": "Raspberry Pi 5"})
    b = make_result(seed=2, device={"fingerprint": "bbbb", "board": "Raspberry Pi 5"})
    assert labels([a, b]) == ["mnist @Raspberry Pi 5/aaaa", "mnist @Raspberry Pi 5/bbbb"]
    # a result that says nothing of its device is not "another device": no @ then
    assert labels([a, make_result(seed=3, threads=2)]) == ["mnist threads=1", "mnist threads=2"]


def test_a_folder_stands_for_the_results_under_it(tmp_path):
    for board, threads in (("pi5", 1), ("jetson", 1)):
        (tmp_path / "fleet" / board).mkdir(parents=True)
        (tmp_path / "fleet" / board / "mnist.json").write_text(json.dumps(fleet_result(board, threads, 1.0, 0)))
    (tmp_path / "fleet" / "fleet.json").write_text(json.dumps({"jobs": []}))  # a summary, not a result
    rs = load_results(tmp_path / "fleet")
    assert [r["fleet"]["board"] for r in rs] == ["jetson", "pi5"]  # sorted by path
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match="no benchmark results under the folder"):
        load_results([tmp_path / "empty"])


def test_equal_configs_get_distinct_labels_by_start_time():
    a = make_result(started_at="2026-12-06T06:21:28.612+00:00")
    b = make_result(seed=1, started_at="2026-12-06T06:25:03.001+00:00")
    assert labels([a, b]) == ["mnist 06:21:28.612", "mnist 06:25:03.001"]
    assert labels([make_result(), make_result(seed=1)]) == ["mnist #0", "mnist #1"]  # nothing else tells them apart


def test_runs_give_the_hierarchical_ci_and_the_band_decides_equivalence():
    rng = np.random.default_rng(5)

    def runs_result(median, k, threads):
        runs = [(median * np.exp(rng.normal(0, 0.005)) * rng.lognormal(0, 0.1, 400)).tolist() for _ in range(k)]
        return make_result(threads=threads, samples_ms=[s for r in runs for s in r],
                           runs=[{"samples_ms": r} for r in runs])

    a, b = runs_result(1.0, 8, 1), runs_result(1.0, 8, 2)
    c = compare(a, b)
    assert c.runs == (8, 8) and c.method.startswith("hierarchical") and SINGLE_RUN not in c.warnings
    assert NOT_INTERLEAVED in c.warnings and NOT_INTERLEAVED not in compare(a, b, interleaved=True).warnings
    inter = compare(a, b, interleaved=True)
    assert inter.equivalent and not inter.different and inter.verdict.startswith("no meaningful difference"), inter.verdict
    assert not compare(a, b, min_effect=0, interleaved=True).equivalent  # no band: the verdict is about significance only
    # measured apart, each side is one draw of the machine: one run's variance, not the mean of 8 runs'
    width = lambda x: np.log(x.ci[1] / x.ci[0])
    assert width(c) == pytest.approx(np.sqrt(8) * width(inter), rel=1e-9) and c.ratio == inter.ratio
    assert "measured apart" in c.method and "measured apart" not in inter.method
    fast = compare(a, runs_result(0.5, 8, 2))
    assert fast.different and fast.ci[0] <= 2.0 <= fast.ci[1] and "faster" in fast.verdict, fast.verdict
    one = compare(a, make_result(threads=2))  # runs against a single run: the within-run bootstrap, said so
    assert one.runs == (8, 1) and SINGLE_RUN in one.warnings
