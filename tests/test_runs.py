"""edgekit.perf.runs: independent runs, and --repeat auto's plan (Stein's two-stage procedure).

The child processes are replaced by synthetic runs whose medians are chosen, so the plan can be
checked against the formula worked out here with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit._errors import ConfigError
from edgekit.perf import runs

T_975_DF4 = 2.7764451051977987  # Student's t, 0.975 quantile, 4 degrees of freedom (tables)


@pytest.fixture
def fake_runs(monkeypatch):
    """run_once returns a run whose samples sit around the next median of ``medians``; each run
    advances a fake clock by ``pace`` seconds."""
    state = {"medians": [], "pace": 1.0, "now": 0.0, "ran": 0}

    def fake_once(model, options, what=""):
        m = state["medians"][state["ran"] % len(state["medians"])]
        state["ran"] += 1
        state["now"] += state["pace"]
        samples = (m * np.linspace(0.99, 1.01, 101)).tolist()
        return {"model": model, "model_sha256": "0" * 64, "config": {}, "samples_ms": samples,
                "cold_start_ms": {"session_ms": 1.0, "first_run_ms": 1.0}, "latency_ms": {"p50": m, "n": 101}, "throughput_ips": 1e3 / m}

    monkeypatch.setattr(runs, "run_once", fake_once)
    monkeypatch.setattr(runs.time, "perf_counter", lambda: state["now"])
    return state


def test_auto_runs_as_many_as_steins_formula_asks(fake_runs):
    fake_runs["medians"] = [5.0, 5.2, 4.9, 5.1, 5.3, 5.0, 4.95]
    r = runs.run_auto("m", target=0.02, budget_s=1000, max_runs=40)
    spread = np.std(np.log(fake_runs["medians"][:5]), ddof=1)
    needed = math.ceil((T_975_DF4 * spread / 0.02) ** 2)
    assert r.repeat["needed"] == needed > 5 and r.repeat["first_spread"] == pytest.approx(spread)
    assert len(r.runs) == fake_runs["ran"] == r.repeat["runs"] == needed
    lo, hi = r.latency_ms["p50_ci"]
    assert r.repeat["ci_half_width"] == pytest.approx((hi - lo) / 2 / r.latency_ms["p50"])


def test_the_budget_caps_the_runs_and_the_note_says_what_was_needed(fake_runs):
    fake_runs["medians"], fake_runs["pace"] = [5.0, 5.5, 4.6, 5.2, 5.8], 1.5
    r = runs.run_auto("m", target=0.02, budget_s=12.0)
    assert r.repeat["fits"] == 5 + int((12.0 - 7.5) // 1.5) == 8 and len(r.runs) == 8
    assert not r.repeat["reached"] and r.repeat["needed"] > 8
    note = str(r).split("\n")[1]
    assert "not the +-2% aimed at" in note and f"needs {r.repeat['needed']} runs" in note and "--ab" in note


def test_a_steady_machine_stops_after_the_first_runs(fake_runs):
    fake_runs["medians"] = [5.0, 5.01, 4.99, 5.0, 5.005]
    r = runs.run_auto("m", target=0.02, budget_s=1000)
    assert len(r.runs) == 5 and r.repeat["needed"] == 5 and r.repeat["reached"]
    assert "note:" not in str(r)


def test_the_plan_depends_on_the_first_runs_only(fake_runs):
    """Stein: the count is fixed after stage one, so later runs (however steady) do not stop it early."""
    fake_runs["medians"] = [5.0, 5.4, 4.7, 5.2, 5.5] + [5.0] * 50
    r = runs.run_auto("m", target=0.02, budget_s=1000, max_runs=30)
    assert len(r.runs) == 30 == r.repeat["runs"] and r.repeat["needed"] > 30


@pytest.mark.parametrize("bad", [{"target": 0}, {"target": 1.5}, {"budget_s": 0}, {"first": 1}, {"first": 50}])
def test_bad_plans_explain(fake_runs, bad):
    with pytest.raises(ConfigError, match="run_auto needs 0 < target < 1"):
        runs.run_auto("m", **bad)
    assert fake_runs["ran"] == 0
