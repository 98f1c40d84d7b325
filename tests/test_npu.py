"""edgekit.deploy.npu and ``edgekit npu-check``: placement on the QNN HTP emulator, against raw ONNX Runtime.
(The chip table, registration and raw sessions of edgekit.runtime.qnn: test_qnn.py.)

Models are tiny (one conv, 8x8 input): the emulator is 50-100x slower than the CPU EP.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgekit as ek
from edgekit.deploy.npu import npu_check
from edgekit.runtime.qnn import EP, qnn_session

from conftest import make_model, save

QNN_REASON = ("needs the qnn extra (pip install 'edgekit[qnn]'; onnxruntime-qnn has wheels for Windows and "
              "Linux x86_64 only): its HTP emulator runs these checks")


@pytest.fixture
def qnn():
    return pytest.importorskip("onnxruntime_qnn", reason=QNN_REASON)


def tiny_cnn(path, *, tail: str | None = None, batch: int | str = 1):
    """input float32[batch,1,8,8] -> Conv 3x3 -> Relu -> MaxPool -> Flatten -> Gemm (-> tail op) -> logits[batch,10]."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(np.zeros(4, np.float32), "b"),
               numpy_helper.from_array(rng.normal(0, 0.3, (10, 64)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["g" if tail else "logits"], transB=1, name="fc")]
    if tail:
        nodes.append(helper.make_node(tail, ["g"], ["logits"], name=tail.lower()))
    m = make_model(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])], initializers=weights)
    onnx.checker.check_model(m, full_check=True)
    return save(m, path)


@pytest.fixture
def qdq_path(tmp_path):
    from edgekit.deploy.qdq import prepare_for_npu

    path, _ = prepare_for_npu(tiny_cnn(tmp_path / "tiny.onnx"), "digits", tmp_path)
    assert path == str(tmp_path / "tiny_qdq.onnx")
    return tmp_path / "tiny_qdq.onnx"


def test_missing_extra_is_one_line_in_the_api_and_the_cli(monkeypatch, tmp_path, capsys):
    from edgekit.cli.main import main

    monkeypatch.setitem(sys.modules, "onnxruntime_qnn", None)  # makes `import onnxruntime_qnn` fail
    path = tiny_cnn(tmp_path / "tiny.onnx")
    with pytest.raises(ek.MissingExtraError) as info:
        npu_check(path, 57)
    msg = str(info.value)
    assert "pip install 'edgekit[qnn]'" in msg and "Windows and Linux x86_64 only" in msg and "\n" not in msg, msg
    assert main(["npu-check", str(path), "--soc", "57"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgekit: error:") and "pip install 'edgekit[qnn]'" in err and "\n" not in err, err


def test_qdq_model_runs_on_qnn_but_graph_io_quantization(qnn, qdq_path):
    report = npu_check(qdq_path, 57, samples=8)
    on_cpu = sorted(n.op_type for n in report.nodes if n.ep != EP)
    # QNN leaves the graph input's Quantize and the output's Dequantize to the CPU by default
    assert report.status == "full" and on_cpu == ["DequantizeLinear", "QuantizeLinear"], str(report)
    assert all("by design" in n.reason for n in report.nodes if n.ep != EP), str(report)
    assert report.verdict.startswith("fully offloaded") and "by design" in report.verdict
    everything = npu_check(qdq_path, 57, samples=1, offload_io_quantization=False)
    assert all(n.ep == EP for n in everything.nodes), str(everything)


def test_qdq_outputs_match_the_cpu_ep_within_one_quantization_step(qnn, qdq_path):
    import onnxruntime as ort

    x = ek.datasets.digits(split="test")[0][:8]
    cpu = ort.InferenceSession(str(qdq_path), providers=["CPUExecutionProvider"])
    npu = qnn_session(qdq_path, 57)
    got = np.concatenate([npu.run(None, {"input": xi[None]})[0] for xi in x])
    want = np.concatenate([cpu.run(None, {"input": xi[None]})[0] for xi in x])
    report = npu_check(qdq_path, 57, samples=8)
    step, diff = report.agreement.output_step, float(np.abs(got - want).max())
    assert step and diff <= step * 1.001, f"QNN vs CPU max |diff| {diff} > one step {step}"
    assert report.agreement.max_abs_diff == pytest.approx(diff), (report.agreement, diff)
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    assert report.agreement.top1_agreement == agree, (report.agreement, agree)


@pytest.mark.parametrize("op, replacement", [("Erf", "Gelu"), ("Hardmax", "ArgMax")])
def test_float_model_with_an_op_htp_rejects_is_partly_offloaded(qnn, tmp_path, op, replacement):
    report = npu_check(tiny_cnn(tmp_path / f"{op}.onnx", tail=op), 57, samples=2)
    on_cpu = [n for n in report.nodes if n.ep != EP]
    assert report.status == "partial" and [n.op_type for n in on_cpu] == [op], str(report)
    assert f"`{op}` are not supported by QNN" in on_cpu[0].reason, on_cpu[0].reason
    qnn_nodes = sum(n.ep == EP for n in report.nodes)
    assert report.verdict == f"partly offloaded ({qnn_nodes} of {len(report.nodes)} nodes on QNN)"
    assert any(h.startswith(op) and replacement in h for h in report.hints), report.hints
    assert any(h.startswith("float model") and "QDQ" in h for h in report.hints), report.hints


def test_dynamic_batch_is_detected_hinted_and_fixed(qnn, tmp_path):
    from edgekit.deploy.qdq import prepare_for_npu

    dynamic = tiny_cnn(tmp_path / "dyn.onnx", batch="batch")
    report = npu_check(dynamic, 57, samples=1)
    assert report.status == "none" and report.verdict.startswith("not offloaded"), str(report)
    assert {n.reason for n in report.nodes} == {"Cannot get shape"}, str(report)
    assert any("dynamic" in h and "--dim_param batch --dim_value 1" in h for h in report.hints), report.hints
    path, notes = prepare_for_npu(dynamic, "digits", tmp_path)
    assert "fixed dynamic dimension(s) input:batch to 1" in notes[0], notes
    fixed = npu_check(path, 57, samples=1)
    assert fixed.status == "full" and not any("dynamic" in h for h in fixed.hints), str(fixed)


def test_soc_model_is_set_on_every_session(qnn, qdq_path):
    # the note warns that a session without soc_model inherits the previous session's chip
    for soc, want in ((69, 69), ("SM8550", 43), (57, 57)):
        report = npu_check(qdq_path, soc, samples=0)
        assert report.compiled_for_soc == want, f"asked for {soc}, the EP compiled for {report.compiled_for_soc}"
        assert qnn_session(qdq_path, soc).get_provider_options()[EP]["soc_model"] == str(want)


def test_a_chip_the_backend_rejects_is_reported_not_hidden(qnn, qdq_path):
    report = npu_check(qdq_path, 999, samples=1)
    assert report.status == "none" and report.errors, str(report)
    assert any("QNN backend failed" in h for h in report.hints), report.hints


def test_compile_writes_a_context_model_that_runs(qnn, qdq_path, tmp_path):
    report = npu_check(qdq_path, 57, samples=2, compile_dir=tmp_path / "out")
    ctx = tmp_path / "out" / "tiny_qdq_soc57_ctx.onnx"
    assert report.compiled["onnx"] == str(ctx) and ctx.is_file() and report.compiled["bins"], report.compiled
    assert report.compiled["max_abs_diff_vs_session"] == 0.0, report.compiled
    placed = {g.ep_name: [n.op_type for n in g.get_nodes()]
              for g in qnn_session(ctx, 57).get_provider_graph_assignment_info()}
    assert placed[EP] == ["EPContext"], placed
    again = npu_check(qdq_path, 57, samples=0, compile_dir=tmp_path / "out")  # overwrites, does not fail
    assert "loads" in again.compiled["status"], again.compiled


def test_report_prints_serializes_and_never_calls_emulator_time_latency(qnn, qdq_path):
    from rich.console import Console

    from edgekit.cli.npu import report_table

    report = npu_check(qdq_path, "8 Gen 3", samples=2)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema"] == "edgekit.npu/1" and data["soc"]["id"] == 57 and data["status"] == "full"
    assert data["emulator_time"]["label"] == "emulator time (not device latency)"
    text = str(report)
    assert "emulator time (not device latency)" in text and report.verdict in text and "Conv" in text
    assert "latency:" not in text.replace("(not device latency)", "")
    console = Console(record=True, width=120)
    console.print(report_table(report))
    assert "why not QNN" in console.export_text()


def test_cli_calibrates_a_dynamic_float_model_and_writes_json(qnn, tmp_path, capsys):
    from edgekit.cli.main import main

    dynamic = tiny_cnn(tmp_path / "dyn.onnx", batch="batch")
    out = tmp_path / "report.json"
    rc = main(["npu-check", str(dynamic), "--soc", "57", "--calibrate", "digits", "--samples", "2", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "fixed dynamic dimension(s) input:batch" in printed and "quantized" in printed, printed
    assert "emulator time (not device latency)" in printed, printed
    data = json.loads(out.read_text())
    assert data["status"] == "full" and len(data["prepared"]) == 2, data["prepared"]
