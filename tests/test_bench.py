"""The benchmark loop rule and result, on a tiny model (no timed asserts: only counts and shapes)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from edgekit.perf.bench import BenchConfig, BenchResult, benchmark, random_feed, time_call


def test_loop_rule_min_runs_and_min_time(relu_path):
    r = benchmark(relu_path, min_runs=30, min_s=0.05, warmup_runs=5, warmup_s=0.0)
    assert r.latency_ms["n"] == len(r.samples_ms) >= 30
    assert sum(r.samples_ms) / 1e3 <= 0.05 + 1.0  # bounded by min_s plus one slow run, not runaway
    assert r.latency_ms["min"] <= r.latency_ms["p50"] <= r.latency_ms["p99"] <= r.latency_ms["max"]
    assert r.cold_start_ms["session_ms"] > 0 and r.cold_start_ms["first_run_ms"] > 0
    assert r.throughput_ips > 0


def test_max_time_caps_the_run(relu_path):
    r = benchmark(relu_path, min_runs=10**9, min_s=100.0, max_s=0.2, warmup_s=0.0, warmup_runs=1)
    ran_s = r.latency_ms["n"] / r.throughput_ips  # the measured span (throughput = n / span)
    # the loop stops at the first call that starts past max_s: past the cap, by at most that one call
    assert 0.2 < ran_s <= 0.2 + max(r.samples_ms) / 1e3 + 0.5, ran_s
    assert sum(r.samples_ms) / 1e3 <= ran_s


def test_result_is_json_with_raw_samples_and_config(relu_path):
    r = benchmark(relu_path, threads=1, min_runs=20, min_s=0.0)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema_version"] == 1 and d["config"]["threads"] == 1
    assert len(d["samples_ms"]) == d["latency_ms"]["n"] and len(d["model_sha256"]) == 64
    assert "p50" in str(r) and "inferences/s" in str(r)


def test_random_feed_fills_dynamic_axes(relu_path):
    from edgekit import load

    feed = random_feed(load(relu_path), batch_size=4)
    assert feed["x"].shape == (4, 3) and feed["x"].dtype == np.float32
    assert BenchConfig().min_runs == 100


def test_result_records_memory_cpu_device_and_suspect(relu_path):
    r = benchmark(relu_path, min_runs=20, min_s=0.0).to_dict()
    assert r["memory"]["peak_rss_bytes"] > 10_000_000 and r["memory"]["session_rss_increment_bytes"] is not None
    assert r["cpu_s_per_inference"] is not None and r["cpu_s_per_inference"] >= 0
    assert len(r["device"]["fingerprint"]) == 12
    assert set(r["suspect"]) >= {"is_suspect", "reasons"}
    assert r["energy"]["available"] in (True, False) and ("detail" in r["energy"] or "joules" in r["energy"])
    assert r["environment"]["onnxruntime"]


def test_throughput_mode_uses_several_sessions(relu_path, monkeypatch):
    from edgekit.runtime import model as model_module

    real_load, loaded, calls = model_module.load, [], {}

    def counting_load(*args, **kwargs):  # every session benchmark() opens, each run it makes counted
        m = real_load(*args, **kwargs)
        run, key = m._run, len(loaded)
        calls[key] = 0

        def counted(*a):
            calls[key] += 1
            return run(*a)

        m._run = counted
        loaded.append(m)
        return m

    monkeypatch.setattr(model_module, "load", counting_load)
    r = benchmark(relu_path, mode="throughput", concurrency=2, sessions=2, min_runs=50, min_s=0.05, warmup_runs=2)
    assert len(loaded) == 2 and loaded[0].session is not loaded[1].session
    # each of the two threads calls its own session: both past their one warm-up call
    assert calls[0] >= 2 and calls[1] >= 2, calls
    assert calls[0] + calls[1] >= r.latency_ms["n"] >= 50, (calls, r.latency_ms["n"])


def test_bad_mode_explains(relu_path):
    import pytest

    with pytest.raises(ValueError, match="mode must be one of"):
        benchmark(relu_path, mode="fast")


def test_feed_errors_surface_before_timing(relu_path):
    import pytest

    from edgekit import InputError

    with pytest.raises(InputError, match="expects float32"):
        benchmark(relu_path, feed={"x": np.zeros((1, 3), np.float64)}, min_runs=1)


def test_max_runs_caps_the_run(relu_path):
    r = benchmark(relu_path, min_runs=10, min_s=100.0, max_runs=300, warmup_s=0.0, warmup_runs=1)
    assert r.latency_ms["n"] == 300


def test_time_call_times_a_plain_python_callable():
    calls = []
    r = time_call(lambda: calls.append(1), name="append", min_runs=30, min_s=0.0, warmup_runs=5, warmup_s=0.0)
    assert r.model == "append" and r.model_sha256 == ""
    assert r.latency_ms["n"] == len(r.samples_ms) >= 30
    assert len(calls) == 1 + 5 + len(r.samples_ms), "first call + warm-up + measured: each call timed once"
    assert r.latency_ms["p50"] == np.median(r.samples_ms)
    back = json.loads(json.dumps(r.to_dict()))
    assert set(back) == set(BenchResult.__dataclass_fields__) and back["memory"]["peak_rss_bytes"] > 0


def test_one_monitor_thread_watches_the_run():
    """Memory, sampler and energy are polled by one thread, not one each."""
    alive = []
    r = time_call(lambda: alive.append(threading.active_count()), min_runs=5, min_s=0.0, warmup_runs=0, warmup_s=0.0)
    assert set(alive[1:]) == {alive[0] + 1}, f"threads at the cold start {alive[0]}, while timed {sorted(set(alive[1:]))}"
    assert r.sampler["summary"]["n"] >= 2 and r.memory["peak_rss_bytes"] > 0


def test_cpu_time_counts_the_measured_phase_only():
    """Warm-up burns ~0.3 s of CPU, the measured calls sleep: the warm-up must not be in cpu_s_per_inference
    (the issue saw 21.96 ms of CPU per 7.26 ms inference at --warmup-s 4)."""
    import time

    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= 4:  # the first call (cold start) and the 3 warm-up runs: busy
            end = time.process_time() + 0.08
            while time.process_time() < end:
                pass
        else:
            time.sleep(0.002)

    r = time_call(fn, name="burn", min_runs=20, min_s=0.0, warmup_runs=3, warmup_s=0.0, max_s=5.0)
    measured_cpu = r.cpu_s_per_inference * r.latency_ms["n"]
    assert measured_cpu < 0.08, f"{measured_cpu:.3f} CPU s in the measured phase: the warm-up's 0.24 s leaked in"


def test_the_timed_call_is_recorded_and_public_times_inference_session_run(relu_path, monkeypatch):
    import onnxruntime as ort

    public = []
    real = ort.InferenceSession.run
    monkeypatch.setattr(ort.InferenceSession, "run", lambda self, *a, **k: public.append(1) or real(self, *a, **k))
    r = benchmark(relu_path, min_runs=20, min_s=0.0, warmup_runs=2, warmup_s=0.0)
    assert r.timed == "InferenceSession._sess.run (C++ binding)" and public == [], "the default times the binding"
    r = benchmark(relu_path, timed="public", min_runs=20, min_s=0.0, warmup_runs=2, warmup_s=0.0)
    assert r.timed == "InferenceSession.run (public API)" and r.config.timed == "public"
    assert len(public) == 2 + r.latency_ms["n"], "every warm-up and measured call goes through InferenceSession.run"
    assert r.started_at.endswith("+00:00") and "timed=public" in r.config.label()


def test_bad_timed_explains(relu_path):
    from edgekit._errors import ConfigError

    with pytest.raises(ConfigError, match=r"timed must be one of \('binding', 'public'\), got 'cpp'"):
        benchmark(relu_path, timed="cpp")


def test_merge_runs_keeps_each_run_and_pools_the_summary():
    from edgekit.perf.runs import merge_runs

    runs = [time_call(lambda: None, name="noop", min_runs=30, min_s=0.0, warmup_s=0.0).to_dict() for _ in range(3)]
    m = merge_runs(runs)
    from edgekit.perf.comparison import run_samples

    assert [x["n_samples"] for x in m.runs] == [len(x["samples_ms"]) for x in runs]  # samples stored once, pooled
    assert [list(r) for r in run_samples(m.to_dict())] == [x["samples_ms"] for x in runs]
    assert m.samples_ms == [s for x in runs for s in x["samples_ms"]] and m.latency_ms["n"] == len(m.samples_ms)
    assert m.latency_ms["runs"] == 3 and m.latency_ms["p50_ci"][0] <= m.latency_ms["p50_runs"] <= m.latency_ms["p50_ci"][1]
    medians = [np.median(x["samples_ms"]) for x in runs]
    assert m.latency_ms["p50_runs"] == pytest.approx(float(np.exp(np.mean(np.log(medians)))), rel=1e-9)
    assert "in 3 processes" in str(m)
