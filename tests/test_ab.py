"""A/B: config parsing, and a real interleaved run in separate processes."""

from __future__ import annotations

import pytest

from edgekit.perf.interleave import parse_config, run_ab


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
