"""edgekit.perf.export: CSV round trip through csv.DictReader (the oracle) and the rich table."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from edgekit.perf.export import CONFIG_FIELDS, FIELDS, results_table, row, to_csv
from edgekit.perf.stats import summarize


def make_result(median_ms=1.0, n=200, seed=0, threads=1, **extra) -> dict:
    samples = (median_ms * np.random.default_rng(seed).lognormal(0.0, 0.1, n)).tolist()
    r = {"schema_version": 1, "model": "mnist", "model_sha256": "ab" * 32,
         "config": {"threads": threads, "providers": ["cpu"], "optimization": "all", "batch_size": 1},
         "cold_start_ms": {"session_ms": 12.5, "first_run_ms": 3.25}, "latency_ms": summarize(samples),
         "throughput_ips": 1e3 / median_ms, "samples_ms": samples, "environment": {}}
    r.update(extra)
    return r


FULL = dict(device={"fingerprint": "f00dcafe1234"}, suspect={"is_suspect": True, "reasons": ["hot"]},
            memory={"peak_rss_bytes": 123456789, "session_rss_increment_bytes": 1000},
            cpu_s_per_inference=0.0021, energy={"available": True, "joules_per_inference": 0.0042})


def test_csv_round_trip(tmp_path):
    results = [make_result(threads=1, **FULL), make_result(0.7, seed=1, threads=4)]
    path = tmp_path / "out.csv"
    to_csv(results, path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == list(FIELDS), reader.fieldnames
    assert len(rows) == 2 and all(len(r) == len(FIELDS) for r in rows), f"{len(rows)} rows, {[len(r) for r in rows]} columns"
    full, bare = rows
    for res, got in zip(results, rows):
        for k in ("n", "min", "mean", "std", "p50", "p90", "p95", "p99"):
            assert float(got[k]) == pytest.approx(res["latency_ms"][k], rel=1e-12), f"{k}: {got[k]} vs {res['latency_ms'][k]}"
        lo, hi = res["latency_ms"]["p50_ci"]
        assert (float(got["p50_ci_lo"]), float(got["p50_ci_hi"])) == pytest.approx((lo, hi)), (got["p50_ci_lo"], lo, hi)
        assert float(got["throughput_ips"]) == pytest.approx(res["throughput_ips"])
    assert (full["model"], full["threads"], full["providers"], full["batch_size"]) == ("mnist", "1", "cpu", "1"), full
    assert (full["session_ms"], full["first_run_ms"]) == ("12.5", "3.25"), full
    assert (full["peak_rss_bytes"], full["cpu_s_per_inference"], full["joules_per_inference"]) == ("123456789", "0.0021", "0.0042")
    assert (full["suspect"], full["device_fingerprint"], full["model_sha256"]) == ("yes", "f00dcafe1234", "ab" * 32)
    missing = [k for k in FIELDS if bare[k] == ""]
    absent_config = [k for k in CONFIG_FIELDS if k not in ("threads", "providers", "optimization", "batch_size")]
    assert missing == [*absent_config, "timed_call", "started_at", "peak_rss_bytes", "cpu_s_per_inference",
                       "joules_per_inference", "suspect", "device_fingerprint"], missing
    assert bare["runs"] == "1"  # a result without 'runs' is one run


def test_csv_has_every_config_field_so_a_spin_sweep_is_two_distinct_rows():
    import dataclasses

    from edgekit.perf.bench import BenchConfig

    on, off = (make_result(config=dataclasses.asdict(BenchConfig(threads=2, spin_wait=s, mode="throughput",
                                                                   concurrency=3))) for s in (True, False))
    f = io.StringIO()
    to_csv([on, off], f)
    rows = list(csv.DictReader(io.StringIO(f.getvalue())))
    assert set(CONFIG_FIELDS) == {fl.name for fl in dataclasses.fields(BenchConfig)} <= set(FIELDS)
    assert [(r["spin_wait"], r["mode"], r["concurrency"]) for r in rows] == [("True", "throughput", "3"),
                                                                            ("False", "throughput", "3")]


def test_csv_to_open_file_and_null_ci():
    r = make_result(n=5)  # too few samples for a median CI: p50_ci is None
    assert r["latency_ms"]["p50_ci"] is None
    f = io.StringIO()
    to_csv([r], f)
    (got,) = csv.DictReader(io.StringIO(f.getvalue()))
    assert (got["p50_ci_lo"], got["p50_ci_hi"]) == ("", ""), got


def test_row_accepts_objects_with_to_dict():
    class Fake:
        def to_dict(self):
            return make_result()

    assert row(Fake())["model"] == "mnist"


def test_results_table():
    from rich.console import Console

    t = results_table([make_result(**FULL), make_result(seed=1, threads=2)])
    assert t.row_count == 2
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(t)
    text = console.export_text()
    marks = {line.split()[3]: line.split("│")[-2].strip() for line in text.splitlines() if "threads=" in line}
    assert marks == {"threads=1": "suspect: too few samples or another check", "threads=2": "clean"}, text
