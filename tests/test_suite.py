"""Suites: every job runs once, results land one file each, and a re-run skips finished ones."""

from __future__ import annotations

import json

import pytest

from edgekit.perf import suite as S


@pytest.fixture
def suite_file(tmp_path, relu_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "t", "models": [str(relu_path)], "settings": {"threads": [1, 2]},
                                "budget": {"min_runs": 10, "min_s": 0.0, "warmup_s": 0.0}}))
    return path


def test_suite_runs_grid_and_resumes(suite_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    files = S.run_suite(suite_file, out)
    assert [json.loads(f.read_text())["config"]["threads"] for f in files] == [1, 2]
    assert all(json.loads(f.read_text())["suite"] == "t" for f in files)
    # an interrupted run keeps what it finished: a re-run benchmarks nothing already there
    files[1].unlink()
    calls = []
    real = S.benchmark
    monkeypatch.setattr(S, "benchmark", lambda *a, **k: calls.append(k) or real(*a, **k))
    S.run_suite(suite_file, out)
    assert [c["threads"] for c in calls] == [2], calls


def test_suite_repeat_gives_each_job_runs(tmp_path, relu_path):
    """"repeat": N measures each job in N fresh processes: the file holds the runs and a CI over them."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"name": "r", "models": [str(relu_path)], "repeat": 2,
                                "budget": {"min_runs": 10, "min_s": 0.0, "warmup_s": 0.0}}))
    (f,) = S.run_suite(path, tmp_path / "out")
    result = json.loads(f.read_text())
    assert len(result["runs"]) == 2 and result["latency_ms"]["runs"] == 2 and result["suite"] == "r"
    assert sum(r["n_samples"] for r in result["runs"]) == len(result["samples_ms"])


def test_suite_errors_teach(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": ["digits-cnn"], "settings": {"thread": [1]}}))
    with pytest.raises(ValueError, match=r"unknown setting 'thread'.*'threads'"):
        S.load_suite(bad)
    bad.write_text(json.dumps({"models": ["digits-cnn"], "repeat": 0}))
    with pytest.raises(ValueError, match="'repeat' is the number of independent runs"):
        S.load_suite(bad)
    bad.write_text(json.dumps({"models": []}))
    with pytest.raises(ValueError, match="non-empty 'models'"):
        S.load_suite(bad)


def test_committed_suites_are_valid():
    from pathlib import Path

    for path in (Path(__file__).parents[1] / "benchmarks" / "suites").glob("*.json"):
        assert S.jobs(S.load_suite(path)), path
