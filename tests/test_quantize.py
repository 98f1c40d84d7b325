"""edgekit.deploy.quantization: graphs checked with `onnx`, outputs against raw ONNX Runtime, traps as warnings."""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

import edgekit as ek
from edgekit._errors import EdgekitError, MissingExtraError
from edgekit.cli.optimize import register
from edgekit.deploy.calibration import ArrayReader
from edgekit.deploy.quantization import QuantizationError, QuantizationWarning, QuantResult, pareto, quantize

X_TEST, Y_TEST = ek.datasets.digits(split="test")


def ops(path) -> collections.Counter:
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def raw_logits(path) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": X_TEST})[0]


@pytest.fixture(scope="module")
def static_qdq(tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "qdq.onnx"
    return quantize("digits-cnn", out, measure=False)


def test_static_qdq_has_qdq_pairs_and_runs_as_qlinearconv(static_qdq):
    r = static_qdq
    file_ops = ops(r.output)
    assert file_ops["QuantizeLinear"] > 0 and file_ops["DequantizeLinear"] > 0 and file_ops["Conv"] == 2, file_ops
    assert dict(file_ops) == r.ops
    assert r.executes_as.get("QLinearConv") == 2, r.executes_as  # ORT fuses each DQ-Conv-Q group
    assert r.fallback_ops == {} and r.warnings == []
    assert r.size_after < r.size_before / 2, (r.size_before, r.size_after)


def test_static_accuracy_against_raw_onnxruntime(static_qdq):
    r = static_qdq
    fp32 = (raw_logits(ek.zoo.path("digits-cnn")).argmax(1) == Y_TEST).mean()
    q = (raw_logits(r.output).argmax(1) == Y_TEST).mean()
    assert r.accuracy["fp32"] == pytest.approx(fp32) and r.accuracy["quantized"] == pytest.approx(q), (r.accuracy, fp32, q)
    assert abs(q - fp32) <= 0.01, f"int8 top-1 {q:.4f} vs fp32 {fp32:.4f}: more than 1 point apart"
    assert r.accuracy["delta_points"] == pytest.approx(100 * (q - fp32))


def test_per_channel_gives_one_weight_scale_per_output_channel(tmp_path, static_qdq):
    def conv_weight_scales(path):
        g = onnx.load(str(path)).graph
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        producer = {o: n for n in g.node for o in n.output}
        return [inits[producer[n.input[1]].input[1]].shape for n in g.node if n.op_type == "Conv"]

    assert conv_weight_scales(static_qdq.output) == [(16,), (32,)]  # digits-cnn: 16 and 32 filters
    per_tensor = quantize("digits-cnn", tmp_path / "pt.onnx", per_channel=False, measure=False)
    assert conv_weight_scales(per_tensor.output) == [(), ()]


def test_qoperator_format_writes_qlinear_ops(tmp_path):
    r = quantize("digits-cnn", tmp_path / "qop.onnx", format="qoperator", measure=False)
    file_ops = ops(r.output)
    assert file_ops["QLinearConv"] == 2 and "Conv" not in file_ops, file_ops
    assert file_ops["QuantizeLinear"] == 1 and file_ops["DequantizeLinear"] == 1, file_ops  # only at the edges


def test_dynamic_on_a_conv_net_warns_about_convinteger(tmp_path):
    with pytest.warns(QuantizationWarning, match="ConvInteger"):
        r = quantize("digits-cnn", tmp_path / "dyn.onnx", method="dynamic", measure=False)
    assert ops(r.output)["ConvInteger"] == 2
    assert any("use method='static'" in w for w in r.warnings), r.warnings


def test_int16_activations_are_qdq_and_flagged_as_float_fallback(tmp_path):
    with pytest.warns(QuantizationWarning, match="left in float"):
        r = quantize("digits-cnn", tmp_path / "a16.onnx", activation_type="int16", measure=False)
    g = onnx.load(r.output).graph
    inits = {i.name: i for i in g.initializer}
    zero_points = {inits[n.input[2]].data_type for n in g.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    assert zero_points == {TensorProto.INT16}, zero_points
    assert r.fallback_ops.get("Conv") == 2, r.fallback_ops  # no int16 conv kernel: runs in float
    assert abs(r.accuracy["delta_points"]) <= 1.0, r.accuracy
    with pytest.raises(QuantizationError, match="format='qdq'"):
        quantize("digits-cnn", tmp_path / "x.onnx", activation_type="int16", format="qoperator", measure=False)


def test_fp16_output_close_to_fp32_with_float32_io(tmp_path):
    with pytest.warns(QuantizationWarning, match="Cast"):  # the CPU provider computes many fp16 ops in float32
        r = quantize("digits-cnn", tmp_path / "f16.onnx", method="fp16", measure=False)
    m = onnx.load(r.output)
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # keep_io_types=True
    assert {i.data_type for i in m.graph.initializer if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)} == {TensorProto.FLOAT16}
    ref, got = raw_logits(ek.zoo.path("digits-cnn")), raw_logits(r.output)
    assert np.abs(got - ref).max() <= 1e-2 * np.abs(ref).max(), np.abs(got - ref).max()
    assert 0.4 < r.size_ratio < 0.6, r.size_ratio


def test_calibration_from_an_array_and_a_reader(tmp_path):
    x, _ = ek.datasets.digits(split="train")
    r = quantize("digits-cnn", tmp_path / "arr.onnx", calibration_data=x[:100], measure=False)
    assert r.executes_as.get("QLinearConv") == 2
    reader = ArrayReader("input", x[:70], batch_size=32)
    assert [len(reader.get_next()["input"]) for _ in range(2)] == [32, 32] and reader.get_next() is None  # equal batches
    reader.rewind()
    r2 = quantize("digits-cnn", tmp_path / "rd.onnx", calibration_data=reader, calibration="percentile", measure=False)
    assert r2.accuracy["n"] == 364


def test_errors_teach(tmp_path, monkeypatch):
    with pytest.raises(QuantizationError, match="method must be one of"):
        quantize("digits-cnn", tmp_path / "x.onnx", method="int8")
    with pytest.raises(QuantizationError, match="activation_type must be one of"):
        quantize("digits-cnn", tmp_path / "x.onnx", activation_type="int7")
    with pytest.raises(QuantizationError, match=r"does not fit input 'input'"):
        quantize("digits-cnn", tmp_path / "x.onnx", calibration_data=np.zeros((4, 3, 8, 8), np.float32), measure=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sympy" else real(name, *a))
    with pytest.raises(MissingExtraError, match="pip install sympy"):
        quantize("digits-cnn", tmp_path / "x.onnx", measure=False)
    assert quantize("digits-cnn", tmp_path / "np.onnx", preprocess=False, measure=False).options["preprocess"] is False
    assert issubclass(QuantizationError, EdgekitError)


@pytest.mark.filterwarnings("ignore::edgekit.deploy.quantization.QuantizationWarning")  # a tiny model may measure slower
def test_measure_reports_ratio_structure(tmp_path):
    # structure only: timings are never asserted
    r = quantize("digits-cnn", tmp_path / "m.onnx", rounds=2, min_s=0.01)
    lat = r.latency
    assert len(lat["per_round"]) == 2 and lat["ratio_min"] <= lat["ratio"] <= lat["ratio_max"] and lat["threads"] == 1
    assert "latency" in str(r) and r.to_dict()["label"] == r.label


def fake(label: str, ratio: float, acc: float, size: int) -> QuantResult:
    options = dict(format=label, per_channel=True, calibration="minmax", activation_type="uint8", weight_type="int8",
                   reduce_range=False, preprocess=True)
    return QuantResult("m", "m.onnx", f"{label}.onnx", "static", options, 1000, size, {}, {},
                       latency={"ratio": ratio}, accuracy={"fp32": 0.98, "quantized": acc})


def test_pareto_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = pareto([fake("qdq", 0.45, 0.98, 300), fake("qoperator", 0.5, 0.97, 280)], tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(QuantizationError, match="measure=True"):
        pareto([QuantResult("m", "a", "b", "fp16", {}, 1, 1, {}, {})], tmp_path / "q.png")


def test_cli_quantize_prints_the_report(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "cli.onnx"
    args = parser.parse_args(["quantize", "digits-cnn", "--out", str(out), "--no-measure", "--method", "dynamic",
                              "--json", str(tmp_path / "r.json")])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "ConvInteger" in text and "WARNING" in text, text


def test_a_missing_kernel_says_what_to_do(monkeypatch, tmp_path):
    """onnxruntime 1.23 (Python 3.10, JetPack 6) has no ConvInteger kernel for int8 weights."""
    Q = importlib.import_module("edgekit.deploy.quantization")  # the module: ek.quantize is the function

    def refuse(path):
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for "
                           "ConvInteger(10) node with name '/0/Conv_quant'")

    monkeypatch.setattr(Q, "executed_graph", refuse)
    with pytest.raises(Q.QuantizationError, match=r"ConvInteger nodes: .*weight_type='uint8'"):
        ek.quantize("digits-cnn", tmp_path / "d.onnx", method="dynamic", measure=False)
    assert (tmp_path / "d.onnx").is_file(), "the model is written before it is checked"
