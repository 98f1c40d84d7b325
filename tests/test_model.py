"""edgekit.load / Model against raw ONNX Runtime (the oracle), and every error path."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import make_model, save
from onnx import TensorProto, helper

import edgekit as ek


def raw_run(path, feed):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)


def test_outputs_identical_to_raw_onnxruntime(add_path, rng):
    a, b = (rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2))
    got = ek.load(add_path).run({"a": a, "b": b})
    want = raw_run(add_path, {"a": a, "b": b})
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_single_array_call_and_dynamic_batch(relu_path, rng):
    m = ek.load(relu_path)
    for batch in (1, 7):
        x = rng.standard_normal((batch, 3)).astype(np.float32)
        (y,) = m(x)
        np.testing.assert_array_equal(y, raw_run(relu_path, {"x": x})[0])
    assert m.run({"x": x}, output_names=["y"])[0].shape == (7, 3)


def test_specs_and_session_exposed(add_path):
    m = ek.load(add_path)
    assert [s.name for s in m.inputs] == ["a", "b"] and [s.name for s in m.outputs] == ["s", "d"]
    assert m.inputs[0].dtype == np.float32 and m.inputs[0].shape == (2, 3)
    assert str(m.inputs[0]) == "float32[2,3]"
    assert isinstance(m.session, ort.InferenceSession)
    assert m.providers == m.session.get_providers()
    assert "inputs=[a: float32[2,3], b: float32[2,3]]" in repr(m)


def test_zoo_digits_accuracy_matches_reference():
    m = ek.load("digits-cnn")
    x, y = ek.datasets.digits(split="test")
    acc = float((m(x)[0].argmax(1) == y).mean())
    ref = ek.zoo.entry("digits-cnn").reference["value"]
    assert acc >= 0.97, f"digits-cnn accuracy {acc:.4f} < 0.97"
    assert acc == pytest.approx(ref), f"accuracy {acc} differs from the manifest's reference {ref}"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("optimization", ["disable", "basic", "extended", "all"])
def test_session_settings_do_not_change_outputs(relu_path, rng, threads, optimization):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    m = ek.load(relu_path, threads=threads, optimization=optimization, execution_mode="parallel", spin_wait=False)
    np.testing.assert_array_equal(m(x)[0], raw_run(relu_path, {"x": x})[0])


def test_session_options_are_applied(relu_path):
    m = ek.load(relu_path, threads=1, optimization="basic")
    opts = m.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


@pytest.mark.parametrize("kwargs, words", [
    ({"threads": -1}, "threads must be an int"),
    ({"optimization": "max"}, "optimization must be one of"),
    ({"execution_mode": "turbo"}, "execution_mode must be one of"),
])
def test_bad_settings_explain(relu_path, kwargs, words):
    with pytest.raises(ValueError, match=words):
        ek.load(relu_path, **kwargs)


# --- input errors: each says expected vs got and the fix -----------------------------------

@pytest.mark.parametrize("make_x, words", [
    (lambda: np.zeros((1, 3, 4, 5)), ["float32[1,3,4,5]", "float64[1,3,4,5]", "astype(np.float32)"]),
    (lambda: np.zeros((1, 3, 4, 5), np.uint8), ["uint8", "/ 255", "pre-processing"]),
    (lambda: np.zeros((3, 4, 5), np.float32), ["4 dimensions", "got 3", "x[None]"]),
    (lambda: np.zeros((1, 4, 5, 3), np.float32), ["axis 1 is 4, expected 3", "NHWC", "transpose(0, 3, 1, 2)"]),
    (lambda: np.zeros((1, 3, 8, 8), np.float32), ["axis 2 is 8, expected 4", "resize"]),
    (lambda: [[0.0]], ["numpy array", "list", "np.asarray"]),
])
def test_input_errors_teach(image_model_path, make_x, words):
    m = ek.load(image_model_path)
    with pytest.raises(ek.InputError) as info:
        m(make_x())
    for w in words:
        assert w in str(info.value), f"{w!r} not in: {info.value}"


def test_nan_input_is_reported_with_index(image_model_path):
    x = np.zeros((1, 3, 4, 5), np.float32)
    x[0, 1, 2, 3] = np.nan
    with pytest.raises(ek.InputError, match=r"1 NaN value\(s\) \(first at index \(0, 1, 2, 3\)\).*nan_to_num"):
        ek.load(image_model_path)(x)
    # opting out hands NaN to ONNX Runtime like raw ORT would
    out = ek.load(image_model_path, check_nan=False)(x)[0]
    assert np.isnan(out[0, 1, 2, 3])


def test_missing_extra_and_misnamed_inputs(add_path):
    m = ek.load(add_path)
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ek.InputError, match=r"input 'b' .* is missing.*expects \['a', 'b'\]"):
        m({"a": a})
    with pytest.raises(ek.InputError, match=r"'bb', which is not an input.*Did you mean 'b'\?"):
        m({"a": a, "bb": a})
    with pytest.raises(ek.InputError, match=r"has 2 inputs.*pass a dict"):
        m(a)
    with pytest.raises(ek.InputError, match=r"outputs are \['s', 'd'\]"):
        m.run({"a": a, "b": a}, output_names=["nope"])


# --- load errors ----------------------------------------------------------------------------

def test_missing_file_names_zoo_and_fix(tmp_path):
    with pytest.raises(ek.ModelNotFoundError, match=r"no model file .*digits-cnn.*edgekit models list"):
        ek.load(tmp_path / "nope.onnx")
    with pytest.raises(FileNotFoundError, match=r"did you mean 'digits-cnn'"):
        ek.load("digit-cnn")
    with pytest.raises(ek.ModelNotFoundError, match="is a directory"):
        ek.load(tmp_path)


def test_corrupt_file_is_invalid_model(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_bytes(b"this is a text file, not a model")
    with pytest.raises(ek.InvalidModelError, match=r"not a valid ONNX model.*Expected a \.onnx file"):
        ek.load(bad)


def test_truncated_zoo_copy_is_invalid_model(tmp_path):
    src = ek.zoo.location("digits-cnn").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(src[: len(src) // 3])
    with pytest.raises(ek.ModelLoadError):
        ek.load(cut)


@pytest.mark.parametrize("opset, ir, words", [(99, 8, "opset_version=17"), (17, 99, "upgrade")])
def test_too_new_model_is_unsupported(tmp_path, opset, ir, words):
    m = make_model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], opset=opset, ir_version=ir)
    with pytest.raises(ek.UnsupportedModelError, match=words):
        ek.load(save(m, tmp_path / "new.onnx"))


def test_unknown_operator_is_unsupported(tmp_path):
    m = make_model([helper.make_node("TotallyNewOp", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ek.UnsupportedModelError, match=r"TotallyNewOp.*re-export"):
        ek.load(save(m, tmp_path / "op.onnx"))


def test_info_counts_parameters_and_ops(image_model_path):
    info = ek.load(image_model_path).info()
    assert info.parameters == 60 and info.nodes == 1 and info.op_histogram == {"Mul": 1}
    assert info.opsets == {"": 17} and info.ir_version == 8 and info.producer == "edgekit-tests"
    assert info.file_bytes == image_model_path.stat().st_size
    text = str(info)
    assert "parameters  60" in text and "img: float32[1,3,4,5]" in text
    assert info.to_dict()["op_histogram"] == {"Mul": 1}


def test_runtime_failure_is_inference_error_with_ort_message(tmp_path):
    """A feed that fits the specs but fails inside a kernel: an InferenceError, not a raw ORT error."""
    m = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6]),
                    helper.make_tensor_value_info("shape", TensorProto.INT64, [1])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = ek.load(save(m, tmp_path / "reshape.onnx"))
    x = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(model({"x": x, "shape": np.array([6])})[0], x)
    with pytest.raises(ek.InferenceError, match=r"ONNX Runtime failed while running reshape: .*"):
        model({"x": x, "shape": np.array([4])})
