"""edgekit.runtime.qnn: the chip table, registering the QNN plugin once, and raw sessions, against raw ONNX Runtime.

Sessions need the qnn extra (its HTP emulator); the chip table and the error messages do not.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit as ek
from edgekit.runtime.qnn import EP, SOCS, native_output, qnn_devices, qnn_session, resolve_soc

from conftest import make_model, save

QNN_REASON = ("needs the qnn extra (pip install 'edgekit[qnn]'; onnxruntime-qnn has wheels for Windows and "
              "Linux x86_64 only): its HTP emulator runs these checks")


@pytest.fixture
def qnn():
    return pytest.importorskip("onnxruntime_qnn", reason=QNN_REASON)


@pytest.fixture
def qdq_relu(tmp_path):
    """x -> Quantize -> Dequantize -> Relu -> Quantize -> Dequantize -> y, uint8 with step 1/255: float32[1,1,8,8]."""
    scale = numpy_helper.from_array(np.array(1 / 255, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.uint8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
             helper.make_node("Relu", ["xd"], ["r"], name="relu"),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"], name="q_out"),
             helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"], name="dq_out")]
    m = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])], initializers=[scale, zero])
    return save(m, tmp_path / "qdq_relu.onnx")


def test_soc_names_resolve_to_the_qnn_ids():
    assert resolve_soc(57) == resolve_soc("57") == resolve_soc("SM8650") == resolve_soc("Snapdragon 8 Gen 3")
    assert resolve_soc("8 elite").id == 69 and resolve_soc("8+ Gen 1").id == 42
    assert resolve_soc(999).id == 999  # an id the table lacks passes through: the EP judges it
    assert all(resolve_soc(s.part) is s and resolve_soc(s.name) is s for s in SOCS.values())
    with pytest.raises(ek.SocError, match="57 = SM8650 Snapdragon 8 Gen 3") as info:
        resolve_soc("Snapdragon 7 Gen 3")  # the EP would silently compile for soc_model 0
    assert isinstance(info.value, ValueError) and isinstance(info.value, ek.NpuError)


def test_missing_extra_is_one_line_naming_pip_and_platforms(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime_qnn", None)  # makes `import onnxruntime_qnn` fail
    with pytest.raises(ek.MissingExtraError) as info:
        qnn_devices()
    msg = str(info.value)
    assert "pip install 'edgekit[qnn]'" in msg and "Windows and Linux x86_64 only" in msg and "\n" not in msg, msg
    monkeypatch.setattr("platform.system", lambda: "Darwin")
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    with pytest.raises(ek.MissingExtraError, match=r"only \(this is Darwin arm64: no wheel here\)$"):
        qnn_session("digits-cnn", 57)


def test_native_output_collects_what_cpp_would_print():
    lines: list[str] = []
    with native_output(lines):
        os.write(1, b"\x1b[33mfrom fd 1\x1b[0m\n")  # as a C++ library writes: below Python's sys.stdout
        os.write(2, b"from fd 2\n")
    assert lines == ["from fd 1", "from fd 2"], lines


def test_registration_happens_once(qnn):
    import onnxruntime as ort

    first, second = qnn_devices(), qnn_devices()  # a second register_execution_provider_library would raise
    assert [d.ep_name for d in first] == [d.ep_name for d in second] and first[0].ep_name == EP
    assert EP in ort.get_available_providers()


def test_qnn_session_runs_a_qdq_model_on_the_htp_like_the_cpu_ep(qnn, qdq_relu):
    import onnxruntime as ort

    session = qnn_session(qdq_relu, "SM8650")
    placed = {g.ep_name: [n.op_type for n in g.get_nodes()] for g in session.get_provider_graph_assignment_info()}
    assert "Relu" in placed.get(EP, []), placed
    assert session.get_provider_options()[EP]["soc_model"] == "57"
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 8, 8)).astype(np.float32)
    got = session.run(None, {"x": x})[0]
    want = ort.InferenceSession(str(qdq_relu), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(got - want).max() <= 1 / 255 * 1.001, f"QNN vs CPU max |diff| {np.abs(got - want).max()}"
    assert qnn_session("digits-cnn", 57).get_inputs()[0].shape[1:] == [1, 8, 8]  # zoo names work too


def test_auto_on_a_snapdragon_with_the_qnn_extra_runs_on_qnn(qnn, qdq_relu, monkeypatch):
    """load(providers="auto") on a Snapdragon board (simulated: the HTP emulator stands in for the NPU)."""
    from edgekit.runtime import providers

    board = providers.Platform("snapdragon", "Windows", "aarch64", qnn=True, soc=57)
    monkeypatch.setattr(providers.Platform, "here", classmethod(lambda cls: board))
    model = ek.load(qdq_relu)  # providers=None means "auto"
    assert model.provider_choice.chosen == EP and "Hexagon NPU" in model.provider_choice.reason
    placed = {g.ep_name for g in model.session.get_provider_graph_assignment_info()}
    assert EP in placed, f"expected nodes on {EP}, got {placed}"
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 1, 8, 8)
    np.testing.assert_allclose(model(x)[0], np.round(np.maximum(x, 0) * 255) / 255, atol=1 / 255 + 1e-6)
