"""edgekit.perf.profiler against two oracles: the ONNX graph itself (onnx.load, and the optimized
graph ORT writes out), and the raw trace events of a committed fixture, re-summed here by a
different method (file order instead of timestamps). No timed asserts: only structure and sums."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import edgekit as ek
from edgekit._errors import ConfigError, ResultError
from edgekit.cli.main import main
from edgekit.runtime import zoo
from edgekit.perf.profiler import parse_trace, profile

FIXTURE = Path(__file__).parent / "fixtures" / "profiles" / "digits-cnn-ort1.32.json"
FIXTURE_WARMUP = 1  # see fixtures/profiles/README.md


def _graph(path) -> list[tuple[str, str]]:
    return [(n.name, n.op_type) for n in onnx.load(str(path)).graph.node]


def _shares_sum_to_one(r):
    total = sum(n.share for n in r.nodes)
    assert abs(total - 1) < 1e-9, f"node shares sum to {total!r}, expected 1"
    total = sum(o.share for o in r.op_types)
    assert abs(total - 1) < 1e-9, f"op-type shares sum to {total!r}, expected 1"


def test_unoptimized_profile_matches_the_onnx_graph_node_for_node():
    expected = sorted(_graph(zoo.path("digits-cnn")))  # the oracle: the graph as exported
    r = profile("digits-cnn", runs=4, warmup=2, threads=1, optimization="disable")
    got = sorted((n.name, n.op_type) for n in r.nodes)
    assert got == expected, f"profiled nodes {got} != ONNX graph nodes {expected}"
    assert r.runs == 4 and r.skipped_runs == 2, f"runs={r.runs} skipped={r.skipped_runs}, expected 4 and 2"
    assert all(n.calls == 4 for n in r.nodes), f"calls per node {[n.calls for n in r.nodes]}, expected 4 each"
    assert sorted(r.kernels) == ["Conv", "Flatten", "Gemm", "MaxPool", "Relu"], r.kernels
    assert r.kernels["Conv"] == ["CPUExecutionProvider"], r.kernels
    _shares_sum_to_one(r)
    assert len(r.model_run_samples_us) == 4 and r.model_run_us > 0, r.model_run_samples_us
    assert 0 < r.node_time_fraction <= 1.0, f"node_time_fraction {r.node_time_fraction}"


def test_optimized_profile_matches_the_graph_ort_optimized(tmp_path):
    so = ort.SessionOptions()  # oracle: ask ORT to save the graph it actually runs
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(zoo.path("digits-cnn")), so, providers=["CPUExecutionProvider"])
    expected = Counter(op for _, op in _graph(tmp_path / "opt.onnx"))

    r = profile("digits-cnn", runs=3, warmup=1, threads=1, optimization="all")
    got = Counter({o.op_type: o.count for o in r.op_types})
    assert got == expected, f"profiled op types {dict(got)} != optimized graph {dict(expected)}"
    assert r.runs == 3, f"runs={r.runs}, expected 3 (warm-up excluded)"
    _shares_sum_to_one(r)
    assert "Relu" not in r.kernels, f"Relu should be fused into Conv/Gemm at level 'all': {r.kernels}"


def _events_by_file_order(path, skip_runs):
    """Oracle for the fixture: ORT writes each model_run event after the node events of its run."""
    runs, pending = [], []
    for e in json.loads(Path(path).read_text()):
        if e["cat"] == "Node":
            pending.append(e)
        elif e["cat"] == "Session" and e["name"] == "model_run":
            runs.append((e, pending))
            pending = []
    return runs[skip_runs:]


def test_committed_fixture_gives_stable_numbers():
    r = parse_trace(FIXTURE, skip_runs=FIXTURE_WARMUP)
    measured = _events_by_file_order(FIXTURE, FIXTURE_WARMUP)
    # structural facts of digits-cnn at level 'all' in ORT 1.32 (NCHWc Convs with fused Relu)
    assert r.runs == len(measured) == 5, f"runs={r.runs}, oracle {len(measured)}, expected 5"
    counts = {o.op_type: o.count for o in r.op_types}
    assert counts == {"Conv": 2, "FusedGemm": 1, "Gemm": 1, "MaxPool": 1, "Flatten": 1, "ReorderOutput": 1}, counts
    assert all(n.calls == 5 and n.provider == "CPUExecutionProvider" for n in r.nodes), r.nodes

    node_us = sum(e["dur"] for _, nodes in measured for e in nodes)
    run_us = [run["dur"] for run, _ in measured]
    assert sum(n.total_us for n in r.nodes) == pytest.approx(node_us), f"node total vs oracle {node_us}"
    assert r.model_run_samples_us == run_us, f"{r.model_run_samples_us} != oracle {run_us}"
    assert r.model_run_us == float(np.median(run_us)), f"{r.model_run_us} != median of {run_us}"
    assert r.node_time_fraction == pytest.approx(node_us / sum(run_us)), r.node_time_fraction
    for o in r.op_types:
        want = sum(e["dur"] for _, nodes in measured for e in nodes if e["args"]["op_name"] == o.op_type)
        assert o.total_us == pytest.approx(want), f"{o.op_type}: {o.total_us} us, oracle {want} us"
        assert o.per_run_us == pytest.approx(want / 5), f"{o.op_type}: per run {o.per_run_us}, oracle {want / 5}"
    _shares_sum_to_one(r)
    # warm-up must really be excluded: skipping none adds the first run's time
    all_runs = parse_trace(FIXTURE)
    assert all_runs.runs == 6 and sum(n.total_us for n in all_runs.nodes) > node_us, all_runs.runs


def test_result_serializes_and_prints():
    r = parse_trace(FIXTURE, skip_runs=FIXTURE_WARMUP, model="digits-cnn")
    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema_version"] == 1 and d["runs"] == 5 and len(d["nodes"]) == 7, d.keys()
    text = str(r)
    assert "digits-cnn" in text and "Conv" in text, text
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(r.table(top=3))
    out = console.export_text()
    assert "FusedGemm" in out and "top 3 of 7 nodes" in out, out


class _Digits:
    """The smallest CalibrationDataReader: 32 training images, one at a time."""

    def __init__(self, name):
        x = ek.datasets.digits(split="train")[0][:32]
        self._it = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self._it, None)


def test_static_qdq_quantization_shows_quantized_kernels(tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    src = zoo.path("digits-cnn")
    reader = type("Reader", (_Digits, CalibrationDataReader), {})(onnx.load(str(src)).graph.input[0].name)
    out = tmp_path / "digits-int8.onnx"
    quantize_static(str(src), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True)
    r = profile(out, runs=3, warmup=1, threads=1)
    quantized = {"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger", "NhwcQLinearConv"}
    assert quantized & set(r.kernels), f"no quantized kernel ran; kernels were {r.kernels}"
    assert r.runs == 3, r.runs
    _shares_sum_to_one(r)


def test_events_list_is_accepted_and_fences_are_dropped():
    events = json.loads(FIXTURE.read_text())
    # ORT releases before ~1.10 wrapped every kernel in zero-work fence events; they must not count
    fenced = events + [dict(e, name=e["name"].replace("_kernel_time", suffix), dur=1000)
                       for e in events if e["cat"] == "Node" for suffix in ("_fence_before", "_fence_after")]
    a, b = parse_trace(events, skip_runs=1), parse_trace(fenced, skip_runs=1)
    assert a.to_dict() == b.to_dict() == parse_trace(FIXTURE, skip_runs=1).to_dict(), "fence events changed the result"


@pytest.mark.parametrize("content, why", [
    ("not json at all", "could not be read as JSON"),
    ('{"a": 1}', "got dict"),
    ("[]", "empty list"),
    ('[{"name": "x"}]', "list of 1 items"),
])
def test_a_file_that_is_not_a_trace_says_what_was_expected(tmp_path, content, why):
    path = tmp_path / "trace.json"
    path.write_text(content)
    with pytest.raises(ResultError, match="ONNX Runtime profile JSON") as info:
        parse_trace(path)
    assert why in str(info.value), str(info.value)


def test_skipping_every_run_is_an_error():
    with pytest.raises(ConfigError, match="6 model_run events but skip_runs=6"):
        parse_trace(FIXTURE, skip_runs=6)


def test_cli_main_writes_json_and_keeps_the_trace(tmp_path, capsys):
    out, trace = tmp_path / "p.json", tmp_path / "trace.json"
    rc = main(["profile", "--runs", "2", "digits-cnn", "--warmup", "1", "--threads", "1", "--json", str(out),
               "--trace", str(trace), "--top", "3"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["runs"] == 2 and d["environment"]["threads"] == 1, d
    assert parse_trace(trace, skip_runs=1).runs == 2, "the kept trace should re-parse to the same runs"
    assert "op type" in capsys.readouterr().out
