"""edgekit.deploy.optimization: saved graphs must compute what the original computes (raw ONNX Runtime as the
oracle) with no more nodes; histograms against `onnx`; fallback detection on hand-built graphs."""

from __future__ import annotations

import argparse
import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import make_model, save
from onnx import TensorProto, helper, numpy_helper

import edgekit as ek
from edgekit.deploy.optimization import LEVELS, executed_graph, fallback_ops, interleaved_p50, op_histogram, optimize
from edgekit.cli.optimize import register


def raw_run(path, feed, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feed)


@pytest.fixture
def conv_relu_path(tmp_path, rng):
    """Conv(3->4, 3x3) + Relu on float32[batch,3,6,6]: `extended` fuses them into one FusedConv."""
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 6, 6])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 6, 6])], initializers=[w])
    return save(m, tmp_path / "conv_relu.onnx")


@pytest.mark.parametrize("model", ["digits-cnn", "conv_relu"])
def test_saved_levels_compute_the_same_with_no_more_nodes(model, conv_relu_path, tmp_path, rng):
    src = ek.zoo.path(model) if model == "digits-cnn" else conv_relu_path
    feed = ({"input": ek.datasets.digits(split="test")[0]} if model == "digits-cnn"
            else {"x": rng.standard_normal((2, 3, 6, 6)).astype(np.float32)})
    want = raw_run(src, feed)[0]
    r = optimize(src, tmp_path / "out", measure=False)
    original_nodes = len(onnx.load(str(src)).graph.node)
    assert [lv.level for lv in r.levels] == list(LEVELS) and r.nodes == original_nodes
    for lv in r.levels:
        assert lv.nodes <= original_nodes, (lv.level, lv.nodes, original_nodes)
        got = raw_run(lv.path, feed)[0]  # the saved file, run without further optimization
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"level {lv.level}")
    fused = {lv.level: lv for lv in r.levels}["extended"]
    assert fused.op_histogram.get("FusedConv", 0) >= 1 and fused.nodes < original_nodes, fused.op_histogram


def test_histograms_match_onnx_and_notes_name_the_nchwc_layout(tmp_path):
    r = optimize("mobilenetv2-224", tmp_path, levels=("disable", "all"), measure=False)
    proto = onnx.load(str(ek.zoo.path("mobilenetv2-224")))
    assert r.op_histogram == dict(collections.Counter(n.op_type for n in proto.graph.node)), r.op_histogram
    assert r.levels[0].op_histogram == r.op_histogram
    assert r.levels[1].custom_domains.get("com.microsoft.nchwc", 0) > 0, r.levels[1].custom_domains
    assert any("NCHWc" in n for n in r.notes), r.notes
    assert "disable" in str(r) and r.to_dict()["levels"][1]["level"] == "all"


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="level must be one of"):
        optimize("digits-cnn", levels=("fastest",), measure=False)


def qdq_graph(middle: str, tail: str | None = None):
    """x -Q-DQ-> `middle` -Q-DQ-> [tail] -> y: `middle` sits in float between DQ and Q."""
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, np.uint8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node(middle, ["xd"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "s", "z"], ["mq"]),
             helper.make_node("DequantizeLinear", ["mq", "s", "z"], ["md" if tail else "y"])]
    if tail:
        nodes.append(helper.make_node(tail, ["md"], ["y"]))
    return make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializers=[scale, zp])


def test_fallback_ops_finds_float_islands_only():
    assert fallback_ops(qdq_graph("Exp")) == {"Exp": 1}
    # a float op after the last DequantizeLinear is the model's float output, not a fallback
    assert fallback_ops(qdq_graph("Exp", tail="Softmax")) == {"Exp": 1}


def test_executed_graph_fuses_qdq_around_supported_ops(tmp_path, rng):
    # after ORT's fusions Exp is still between DequantizeLinear and QuantizeLinear: no quantized kernel
    path = save(qdq_graph("Exp"), tmp_path / "exp.onnx")
    assert fallback_ops(executed_graph(path)) == {"Exp": 1}
    assert op_histogram(path) == {"QuantizeLinear": 2, "DequantizeLinear": 2, "Exp": 1}


def test_interleaved_p50_structure():
    p50s, suspect = interleaved_p50({"a": "digits-cnn", "b": "digits-cnn"}, rounds=2, min_s=0.01,
                                    options={"b": {"optimization": "disable"}})
    assert [len(v) for v in p50s.values()] == [2, 2] and all(v > 0 for vs in p50s.values() for v in vs)
    assert len(suspect) == 4 and all("is_suspect" in b for b in suspect)


def test_cli_optimize(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["optimize", "digits-cnn", "--out", str(tmp_path), "--no-measure", "--levels", "disable,extended"])
    assert args.func(args) == 0
    assert "FusedConv" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-cnn.disable.onnx", "digits-cnn.extended.onnx"]
    with pytest.raises(SystemExit):
        parser.parse_args(["optimize", "digits-cnn", "--levels", "max"])


def test_cli_choices_match_the_library_and_help_imports_no_numpy():
    import subprocess
    import sys

    from edgekit.cli import optimize as optimize_cli
    from edgekit.deploy.optimization import _ORT_LEVEL
    from edgekit.deploy.quantization import CALIBRATIONS, FORMATS, METHODS, TYPES  # (ek.quantize is the function)

    assert (optimize_cli.METHODS, optimize_cli.FORMATS) == (METHODS, FORMATS)
    assert optimize_cli.CALIBRATIONS == tuple(CALIBRATIONS) and optimize_cli.TYPES == tuple(TYPES)
    assert optimize_cli.LEVELS == tuple(_ORT_LEVEL)
    code = ("import argparse, sys; from edgekit.cli.optimize import register; "
            "register(argparse.ArgumentParser().add_subparsers()); print('numpy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
