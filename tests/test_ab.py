"""A/B: config parsing, and a real interleaved run in separate processes."""

from __future__ import annotations

import pytest

from edgekit.perf.interleave import interleave, parse_config, run_ab, schedule


def test_parse_config():
    assert parse_config("threads=1") == {"threads": 1}
    assert parse_config("spin=on, batch=2") == {"spin_wait": True, "batch_size": 2}
    with pytest.raises(ValueError, match=r"expected key=value pairs with keys .*'threads'"):
        parse_config("thread=2")


@pytest.mark.slow
def test_ab_interleaves_in_separate_processes():
    res = run_ab("digits-cnn", "threads=1", "threads=2", rounds=2, block_s=0.1, seed=1)
    assert sorted(res.order) == ["A", "A", "B", "B"]
    assert res.a["config"]["threads"] == 1 and res.b["config"]["threads"] == 2
    assert len(res.a["blocks"]) == 2 and res.a["latency_ms"]["n"] == sum(b["n"] for b in res.a["blocks"])
    assert any(w in str(res.comparison) for w in ("faster", "slower", "no significant difference")), res.comparison


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
