"""The HTML report: one self-contained file, charts that decode as PNG, escaped text, soft extras."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import edgekit.perf.report as report
from edgekit._errors import MissingExtraError
from edgekit.cli.main import main
from edgekit.perf.stats import summarize

PNG_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def make_result(model="mnist<b>&cnn", threads=1, n=200, seed=0, sampler=False, suspect=False):
    samples = np.random.default_rng(seed).lognormal(mean=np.log(4.0 / threads), sigma=0.15, size=n)
    r = {"schema_version": 1, "model": model, "model_sha256": "0" * 64,
         "config": {"threads": threads, "providers": ["CPUExecutionProvider"], "optimization": "all",
                    "batch_size": 1},
         "cold_start_ms": {"session_ms": 35.0, "first_run_ms": 6.5},
         "latency_ms": summarize(samples.tolist()), "throughput_ips": 1e3 / float(samples.mean()),
         "samples_ms": samples.tolist(), "environment": {"machine": "x86_64"}}
    if sampler:
        ticks = np.arange(0.0, samples.sum() / 1e3, 0.05)
        r["sampler"] = {"interval_s": 0.05, "summary": {},
                        "samples": [{"t": 100 + t, "cpu_mhz_mean": 2400 - 300 * t, "temp_c_max": 55 + 10 * t,
                                     "pressure_pct": 0.0, "load1": 1.0} for t in ticks]}
    if suspect:
        r["suspect"] = {"is_suspect": True, "reasons": ["CPU throttled from 2400 to 2100 MHz"]}
        r["device"] = {"fingerprint": "abc123", "cpu_model": "Cortex-A76", "board": "Raspberry Pi 5"}
    return r


@pytest.fixture
def results():
    return [make_result(threads=1, sampler=True), make_result(threads=2, seed=1),
            make_result(threads=4, seed=2, suspect=True)]


PROFILE = {"op_types": [{"op_type": "Conv", "total_us": 1800.0, "share": 0.6, "count": 2},
                        {"op_type": "Relu", "total_us": 900.0, "share": 0.3, "count": 2},
                        {"op_type": "Gemm", "total_us": 300.0, "share": 0.1, "count": 1}]}


def pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b, validate=True) for b in PNG_URI.findall(page)]


def test_report_is_one_self_contained_file_with_every_chart(tmp_path, results):
    out = report.write_report(results, tmp_path / "r.html", profile=PROFILE, title="Pi <5> & friends")
    assert list(tmp_path.iterdir()) == [out], f"expected a single file, got {list(tmp_path.iterdir())}"
    page = out.read_text(encoding="utf-8")
    images = pngs(page)
    # histogram + CDF + 3 timelines + thread scaling + per-op
    assert len(images) == 2 + 3 + 1 + 1, f"got {len(images)} embedded PNGs"
    assert page.count("data:image/png;base64,") == len(images)
    assert all(b.startswith(b"\x89PNG") for b in images), [b[:8] for b in images]
    for bad in ("http://", "https://", "<script", "<link"):
        assert bad not in page, f"external reference {bad!r} in report"


def test_report_text_is_escaped_and_shows_numbers_and_warnings(tmp_path, results):
    page = report.write_report(results, tmp_path / "r.html", title="Pi <5>").read_text(encoding="utf-8")
    assert "mnist&lt;b&gt;&amp;cnn" in page and "mnist<b>" not in page
    assert "Pi &lt;5&gt;" in page and "<h1>Pi <5>" not in page
    for r in results:  # units by magnitude: a 0.996 ms p50 reads 996.xxx us
        p50 = r["latency_ms"]["p50"]
        shown = f"{p50 * 1e3:.3f} us" if p50 < 1 else f"{p50:.3f} ms"
        assert shown in page, f"p50 {shown} missing from the summary table"
    assert "CPU throttled from 2400 to 2100 MHz" in page and 'class="suspect"' in page
    assert "Raspberry Pi 5" in page


def test_units_by_magnitude_and_log_axes_for_mixed_scales(tmp_path, monkeypatch):
    """A 12 us model beside a 5 ms one: the summary says us and ms, and both charts use a log x axis."""
    micro, milli = make_result(model="tiny", threads=320), make_result(model="big", threads=1)  # 12.5 us, 4 ms
    scales = []
    real = report._scale
    monkeypatch.setattr(report, "_scale", lambda rs: scales.append(real(rs)) or scales[-1])
    page = report.write_report([micro, milli], tmp_path / "m.html").read_text(encoding="utf-8")
    assert f"{micro['latency_ms']['p50'] * 1e3:.3f} us" in page and f"{milli['latency_ms']['p50']:.3f} ms" in page
    assert scales == [(1e3, "us", True)] * 2, scales  # histogram and CDF: us, log axis
    assert real([milli, make_result(threads=2)]) == (1.0, "ms", False)


def test_chart_count_follows_inputs(tmp_path, results):
    # different models: no thread-scaling chart; no profile: no per-op chart
    mixed = [make_result(model="a", threads=1), make_result(model="b", threads=2)]
    page = report.write_report(mixed, tmp_path / "a.html").read_text(encoding="utf-8")
    assert len(pngs(page)) == 2 + 2, len(pngs(page))
    # same model, but another config key differs too: still no scaling chart
    other = make_result(threads=2)
    other["config"]["batch_size"] = 8
    page = report.write_report([results[0], other], tmp_path / "b.html").read_text(encoding="utf-8")
    assert len(pngs(page)) == 2 + 2, len(pngs(page))
    # a profile without op_types is skipped, not an error; optional keys may be absent
    bare = make_result()
    bare["latency_ms"]["p50_ci"] = None
    page = report.write_report([bare], tmp_path / "c.html", profile={"nodes": []}).read_text(encoding="utf-8")
    assert len(pngs(page)) == 2 + 1, len(pngs(page))


def test_no_figures_left_open(tmp_path, results):
    import matplotlib.pyplot as plt
    before = len(plt.get_fignums())
    report.write_report(results, tmp_path / "r.html", profile=PROFILE)
    assert len(plt.get_fignums()) == before, plt.get_fignums()


def test_missing_matplotlib_names_the_extra(tmp_path, results, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(MissingExtraError) as info:
        report.write_report(results, tmp_path / "r.html")
    msg = str(info.value)
    assert "pip install 'edgekit[lab]'" in msg and "\n" not in msg, msg
    assert not (tmp_path / "r.html").exists()


def test_main_reads_objects_and_lists(tmp_path, results, capsys):
    (tmp_path / "one.json").write_text(json.dumps(results[0]))
    (tmp_path / "many.json").write_text(json.dumps(results[1:]))
    (tmp_path / "prof.json").write_text(json.dumps(PROFILE))
    out = tmp_path / "out.html"
    rc = main(["report", "-o", str(out), str(tmp_path / "one.json"), str(tmp_path / "many.json"),
               "--profile", str(tmp_path / "prof.json"), "--title", "T"])
    assert rc == 0 and out.exists()
    assert len(pngs(out.read_text(encoding="utf-8"))) == 7
    assert main(["report", str(tmp_path / "missing.json"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgekit: error: no result file at") and err.count("\n") == 1, err
    assert "edgekit bench MODEL --json" in err, err


def test_real_benchmark_and_profile_shapes(tmp_path, relu_path):
    from edgekit.perf.bench import benchmark
    r = benchmark(relu_path, threads=1, min_runs=20, min_s=0.0, warmup_s=0.0)  # a BenchResult object
    prof = {"op_types": [{"op_type": "Relu", "count": 1, "total_us": 50.0, "share": 1.0, "per_run_us": 2.5}]}
    page = report.write_report([r], tmp_path / "r.html", profile=prof).read_text(encoding="utf-8")
    assert len(pngs(page)) == 2 + 1 + 1, len(pngs(page))
    assert f"{r.latency_ms['p50'] * 1e3:.3f} us" in page  # a microsecond model is shown in us


def test_results_of_several_boards_are_named_and_grouped_by_board(tmp_path):
    rs = []
    for board, threads in (("board-a", 1), ("board-b", 1), ("board-a", 2)):
        r = make_result(model="cnn", threads=threads, seed=threads)
        r["device"] = {"fingerprint": "f00dcafe0001", "cpu_model": "Xeon"}
        r["fleet"] = {"board": board, "label": board, "worker": f"{board}-1", "host": "lab-pc"}
        rs.append(r)
    page = report.write_report(rs, tmp_path / "r.html").read_text(encoding="utf-8")
    cells = re.findall(r"board-[ab] \(board-[ab]-1 on lab-pc\) Xeon \[f00dcafe0001\]", page)
    assert [c[:7] for c in cells] == ["board-a", "board-a", "board-b"], cells  # rows board by board
    assert "Latency over the run: cnn threads=1 @board-b" in page
