"""The command line, run as a user would (subprocess) and in-process for speed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgekit.cli.main import main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, cwd=cwd)


def test_help_and_version():
    out = run_cli("--help")
    assert out.returncode == 0 and "tour" in out.stdout and "doctor" in out.stdout
    assert "edgekit 0.1.0" in run_cli("--version").stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    out = run_cli("info", str(tmp_path / "missing.onnx"))
    assert out.returncode == 2
    assert out.stderr.startswith("edgekit: error: no model file") and "Traceback" not in out.stderr


def test_info_json(capsys):
    assert main(["info", "digits-cnn", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "digits-cnn" and d["op_histogram"]["Conv"] == 2


def test_models_list_and_verify(capsys):
    assert main(["models", "list"]) == 0
    assert "digits-cnn" in capsys.readouterr().out
    assert main(["models", "verify", "digits-cnn"]) == 0
    assert "accuracy 0.98" in capsys.readouterr().out


def test_bench_writes_json_with_percentiles_and_samples(tmp_path):
    out = tmp_path / "out.json"
    assert main(["bench", "digits-cnn", "--min-runs", "30", "--min-s", "0.1", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert {"p50", "p90", "p99"} <= set(d["latency_ms"]) and len(d["samples_ms"]) == d["latency_ms"]["n"]


def test_bench_thread_sweep(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["bench", "digits-cnn", "--threads", "1,2", "--min-runs", "10", "--min-s", "0", "--json", str(out)]) == 0
    assert [r["config"]["threads"] for r in json.loads(out.read_text())] == [1, 2]
    with pytest.raises(SystemExit):
        main(["bench", "digits-cnn", "--threads", "one"])


@pytest.mark.slow
def test_tour_quick(tmp_path):
    out = run_cli("tour", "--quick", "--out", str(tmp_path / "tour"))
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((tmp_path / "tour" / "tour.json").read_text())
    assert record["digits_accuracy"] >= 0.97
    assert {b["model"] for b in record["benchmarks"]} == {"digits-cnn", "mobilenetv2-224"}
    assert (tmp_path / "tour" / "tour.png").stat().st_size > 10_000


def test_bench_compare_report_profile_end_to_end(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out, threads in ((a, "1"), (b, "2")):
        assert main(["bench", "digits-cnn", "--threads", threads, "--min-runs", "50", "--min-s", "0.1", "--quiet", "--json", str(out)]) == 0
    assert main(["compare", str(a), str(b), "--json", str(tmp_path / "cmp.json")]) == 0
    text = capsys.readouterr().out
    assert any(w in text for w in ("faster", "slower", "no significant difference")), text
    prof = tmp_path / "prof.json"
    assert main(["profile", "digits-cnn", "--runs", "5", "--json", str(prof)]) == 0
    assert json.loads(prof.read_text())["runs"] == 5
    html = tmp_path / "r.html"
    assert main(["report", str(a), str(b), "-o", str(html), "--profile", str(prof)]) == 0
    assert html.read_text().count("data:image/png;base64,") >= 4
    csv_out = tmp_path / "r.csv"
    assert main(["bench", "digits-cnn", "--min-runs", "10", "--min-s", "0", "--quiet", "--csv", str(csv_out)]) == 0
    assert csv_out.read_text().count("\n") == 2
