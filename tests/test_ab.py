"""A/B: config parsing, and a real interleaved run in separate processes."""

from __future__ import annotations

import pytest

from edgekit.perf.interleave import interleave, parse_config, run_ab, schedule


def test_parse_config():
    assert parse_config("threads=1") == {"threads": 1}
    assert parse_config("timed=public") == {"timed": "public"}  # --ab timed=binding timed=public
    assert parse_config("spin=on, batch=2") == {"spin_wait": True, "batch_size": 2}
    with pytest.raises(ValueError, match=r"expected key=value pairs with keys .*'threads'"):
        parse_config("thread=2")


@pytest.mark.slow
def test_ab_interleaves_in_separate_processes():
    res = run_ab("digits-cnn", "threads=1", "threads=2", rounds=2, block_s=0.1, seed=1)
    assert sorted(res.order) == ["A", "A", "B", "B"]
    assert res.a["config"]["threads"] == 1 and res.b["config"]["threads"] == 2
    assert len(res.a["blocks"]) == 2 and res.a["latency_ms"]["n"] == sum(b["n"] for b in res.a["blocks"])
    import numpy as np

    from edgekit.perf.comparison import run_samples

    def figure(side):  # the geometric mean of its blocks' medians: each block is a run
        return np.exp(np.mean([np.log(np.median(r)) for r in run_samples(side)]))

    ratio = figure(res.a) / figure(res.b)  # A over B: > 1, B is faster
    assert (res.comparison.baseline, res.comparison.other) == ("digits-cnn threads=1", "digits-cnn threads=2")
    assert res.comparison.ratio == pytest.approx(ratio), (res.comparison.ratio, ratio)


def _fake_blocks(monkeypatch, p50_ms: dict[int, float]):
    """Stand in for a block's process (edgekit.perf.runs.run_once, the one runner of repeated runs): a
    block with `threads=t` gives 200 samples around p50_ms[t] (a fixed +-5% spread), so the verdict
    run_ab reaches is known in advance."""
    import numpy as np

    from edgekit.perf import runs

    rng = np.random.default_rng(0)

    def fake_once(model, options, what=""):
        threads = options["threads"]
        assert options["min_s"] == 0.01 and what.startswith("A/B block")  # the block budget reaches the process
        samples = (p50_ms[threads] * rng.uniform(0.95, 1.05, 200)).tolist()
        return {"model": "m", "model_sha256": "0" * 64, "config": {"threads": threads}, "samples_ms": samples,
                "cold_start_ms": {"session_ms": 1.0, "first_run_ms": 0.1},
                "latency_ms": {"p50": float(np.median(samples)), "n": len(samples)}, "throughput_ips": 1e3}

    monkeypatch.setattr(runs, "run_once", fake_once)


@pytest.mark.parametrize("p50_ms, verdict, speed", [
    ({1: 2.0, 2: 2.0}, "no meaningful difference (m threads=2/m threads=1 speed ratio 1.0", 1.0),  # CI inside +-2%
    ({1: 1.0, 2: 2.0}, "m threads=2 is ", 0.5),
    ({1: 3.0, 2: 1.0}, "m threads=2 is ", 3.0),
])
def test_ab_verdict_for_known_blocks(monkeypatch, p50_ms, verdict, speed):
    _fake_blocks(monkeypatch, p50_ms)
    res = run_ab("m", "threads=1", "threads=2", rounds=6, block_s=0.01, seed=0)
    assert res.a["label"] == "threads=1" and len(res.a["samples_ms"]) == 1200 == res.a["latency_ms"]["n"]
    assert str(res.comparison.verdict).startswith(verdict), res.comparison.verdict
    assert ("slower" in res.comparison.verdict) == (speed < 1) and ("faster" in res.comparison.verdict) == (speed > 1)
    assert res.comparison.ratio == pytest.approx(speed, rel=0.02)  # other over baseline speed, samples +-5%
    # each block is a run: the CI is the hierarchical one, over 6 runs a side
    assert res.comparison.runs == (6, 6) and res.comparison.method.startswith("hierarchical"), res.comparison
    assert [r["n_samples"] for r in res.a["runs"]] == [200] * 6 and "samples_ms" not in res.a["runs"][0]  # stored once


def test_ab_model_on_each_side_runs_that_model(monkeypatch):
    """--ab model=a.onnx model=b.onnx: two models interleaved; each side's processes bench its own model."""
    from edgekit.perf import runs

    ran = []

    def fake_once(model, options, what=""):
        ran.append(model)
        assert "model" not in options  # the side's model is the run's model, not an option
        samples = [2.0 if model == "b.onnx" else 1.0] * 50
        return {"model": model, "model_sha256": "0" * 64, "config": {"threads": 1}, "samples_ms": samples,
                "cold_start_ms": {"session_ms": 1.0}, "latency_ms": {"p50": samples[0], "n": 50},
                "throughput_ips": 1e3}

    monkeypatch.setattr(runs, "run_once", fake_once)
    res = run_ab(None, "model=a.onnx,threads=1", "model=b.onnx,threads=1", rounds=2, block_s=0.01, seed=0)
    assert sorted(ran) == ["a.onnx", "a.onnx", "b.onnx", "b.onnx"]
    assert res.comparison.ratio == pytest.approx(0.5) and "slower" in res.comparison.verdict
    assert not any("not interleaved" in w for w in res.comparison.warnings)  # it was


def test_a_sweep_takes_turns_and_compare_knows_it(monkeypatch):
    """bench --threads 1,2 --repeat N: the configs' runs alternate in schedule order, the merged results
    share an `interleaved` id, and compare then gives no "not interleaved" warning."""
    import numpy as np

    from edgekit.perf import runs
    from edgekit.perf.comparison import NOT_INTERLEAVED, compare
    from edgekit.perf.interleave import run_sweep

    ran, rng = [], np.random.default_rng(0)

    def fake_once(model, options, what=""):
        ran.append(options["threads"])
        samples = (options["threads"] * rng.uniform(0.95, 1.05, 100)).tolist()
        return {"model": model, "model_sha256": "0" * 64, "config": {"threads": options["threads"]},
                "samples_ms": samples, "cold_start_ms": {"session_ms": 1.0},
                "latency_ms": {"p50": float(np.median(samples)), "n": 100}, "throughput_ips": 1e3}

    monkeypatch.setattr(runs, "run_once", fake_once)
    a, b = run_sweep("m", [{"threads": 1}, {"threads": 2}], 4, seed=2)
    assert ran == [{0: 1, 1: 2}[i] for r in schedule([0, 1], rounds=4, seed=2) for i in r]
    assert a.interleaved == b.interleaved != "" and len(a.runs) == len(b.runs) == 4
    c = compare(a.to_dict(), b.to_dict())
    assert NOT_INTERLEAVED not in c.warnings and c.ratio == pytest.approx(0.5, rel=0.05), c
    (other,) = run_sweep("m", [{"threads": 1}], 2)
    assert NOT_INTERLEAVED in compare(a.to_dict(), other.to_dict()).warnings  # two sweeps: not interleaved


def test_schedule_mirrors_each_pair_of_rounds():
    for seed in range(20):
        order = schedule(["a", "b", "c"], rounds=6, seed=seed)
        assert all(sorted(r) == ["a", "b", "c"] for r in order)
        assert all(order[i + 1] == order[i][::-1] for i in range(0, 6, 2)), order
    assert len({tuple(schedule(["a", "b", "c"], rounds=1, seed=s)[0]) for s in range(20)}) > 1, "first orders vary"


def test_interleave_runs_blocks_in_schedule_order():
    ran = []
    results, order = interleave({k: (lambda k=k: ran.append(k) or len(ran)) for k in "ab"}, rounds=4, seed=3)
    assert ran == order == [s for r in schedule(["a", "b"], rounds=4, seed=3) for s in r]
    assert results == {k: [i + 1 for i, s in enumerate(ran) if s == k] for k in "ab"}
