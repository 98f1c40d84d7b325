"""edgekit.deploy.qdq (what ``edgekit npu-check --calibrate`` does to a float model), against raw ONNX Runtime
on the CPU: no QNN execution provider needed (test_npu.py runs the results on its HTP emulator when present).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnxruntime.quantization.execution_providers import qnn as ort_qnn

import edgekit as ek
from edgekit.deploy.npu import graph_facts
from edgekit.deploy.qdq import QDQ_SETTINGS, dynamic_inputs, prepare_for_npu

from test_npu import tiny_cnn

X_TEST = ek.datasets.digits(split="test")[0]


def cpu(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_dynamic_float_model_becomes_static_qdq_within_a_few_output_steps(tmp_path):
    src = tiny_cnn(tmp_path / "dyn.onnx", batch="batch")
    path, notes = prepare_for_npu(src, "digits", tmp_path)
    assert len(notes) == 2 and "input:batch to 1" in notes[0] and QDQ_SETTINGS in notes[1], notes
    m = onnx.load(path)
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 8, 8]
    assert dynamic_inputs(m) == ([], [])
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    w = dq[conv.input[1]]  # the conv weight: int8, symmetric (zero points 0), one scale per output channel
    assert inits[w.input[0]].dtype == np.int8 and inits[w.input[1]].shape == (4,), w
    assert not inits[w.input[2]].any(), inits[w.input[2]]
    q_in = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input")
    assert inits[q_in.input[2]].dtype == np.uint8  # uint8 activations
    # The oracle: the float model in raw ONNX Runtime, one digit at a time (the QDQ model has batch 1).
    step = graph_facts(path)["output_step"]
    ref, qdq = cpu(src), cpu(path)
    diff = max(np.abs(ref.run(None, {"input": x[None]})[0] - qdq.run(None, {"input": x[None]})[0]).max()
               for x in X_TEST[:50])
    # Measured: about 6 steps (three quantized layers add up); 10 steps is 4% of the output range.
    assert step and diff <= 10 * step, f"max |diff| {diff:.4g} vs output step {step:.4g}"


def test_goes_through_onnx_runtimes_qnn_helpers(tmp_path, monkeypatch):
    calls = []
    for name in ("qnn_preprocess_model", "get_qnn_qdq_config"):
        real = getattr(ort_qnn, name)
        monkeypatch.setattr(ort_qnn, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    prepare_for_npu(tiny_cnn(tmp_path / "tiny.onnx"), "random", tmp_path, samples=4)
    assert calls == ["qnn_preprocess_model", "get_qnn_qdq_config"], calls


def test_an_already_quantized_model_only_gets_static_shapes(tmp_path):
    qdq, _ = prepare_for_npu(tiny_cnn(tmp_path / "tiny.onnx"), "digits", tmp_path)
    m = onnx.load(qdq)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"  # make its batch dynamic again
    onnx.save(m, tmp_path / "dyn_qdq.onnx")
    path, notes = prepare_for_npu(tmp_path / "dyn_qdq.onnx", "digits", tmp_path)
    assert notes[-1].startswith("already quantized") and "input:n to 1" in notes[0], notes
    fixed = onnx.load(path)
    assert dynamic_inputs(fixed) == ([], [])
    assert [n.op_type for n in fixed.graph.node] == [n.op_type for n in m.graph.node]  # not quantized again
    x = X_TEST[:1]
    assert np.array_equal(cpu(path).run(None, {"input": x})[0], cpu(qdq).run(None, {"input": x})[0])
    same, notes = prepare_for_npu(qdq, "digits", tmp_path)  # static already: nothing to write
    assert same == qdq and len(notes) == 1, notes


def test_calibration_data_must_fit(tmp_path):
    wide = tiny_cnn(tmp_path / "tiny.onnx")
    m = onnx.load(wide)
    m.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 9  # [1,1,8,9]: not a digit
    onnx.save(m, tmp_path / "odd.onnx")
    with pytest.raises(ek.InputError, match=r"shape \[1,1,8,8\].*--calibrate random"):
        prepare_for_npu(tmp_path / "odd.onnx", "digits", tmp_path)
    with pytest.raises(ek.InputError, match="one of digits, random"):
        prepare_for_npu(wide, "imagenet", tmp_path)
