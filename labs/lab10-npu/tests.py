"""Tests of Lab 10 (NPU readiness). Nothing here needs the qnn extra: placement reports were recorded
with the HTP emulator (lab10_reports.json, a public file) or are built here; the graph questions run
the student's functions on the example models of lab10_support and compare shapes, op counts, number
formats and outputs (ONNX Runtime's CPU EP) with the reference solution's."""

import json
from pathlib import Path

from edgekit.grading import call, case, equal, ref, within

HERE = Path(__file__).parent
REPORTS = json.loads((HERE / "lab10_reports.json").read_text())["reports"]
QNN, CPU = "QNNExecutionProvider", "CPUExecutionProvider"
IO = "QNN EP is configured to not take Q nodes that consume a graph input (by design: offload_graph_io_quantization)"


def report(*nodes):
    """A synthetic report: nodes given as (op_type, ep, reason)."""
    return {"schema": "edgekit.npu/1",
            "nodes": [{"name": f"/n{i}", "op_type": op, "domain": "", "ep": ep, "reason": why}
                      for i, (op, ep, why) in enumerate(nodes)]}


def same(got, want, path=""):
    """Like equal(), but for dicts (nested): names the first key that differs and shows both values."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return (f"{path or 'the result'}: expected a dict with keys {list(want)}, "
                    f"got {type(got).__name__} {got!r:.120}")
        if set(got) != set(want):
            return (f"{path or 'the result'}: keys differ: missing {sorted(set(want) - set(got), key=str)}, "
                    f"unexpected {sorted(set(got) - set(want), key=str)}")
        for key in want:
            msg = same(got[key], want[key], f"{path}[{key!r}]")
            if msg:
                return msg
        return None
    if equal()(got, want) is None:
        return None
    return f"{path or 'the result'}: expected {want!r:.200}, got {got!r:.200}"


def unsupported(op):
    return f"Operators of type `{op}` are not supported by QNN EP"


# -- q1: summarise a placement report -------------------------------------------------------------------
case("q1", "digits-cnn as exported (dynamic batch)", call("summarize", REPORTS["digits-cnn"]), equal(), public=True)
case("q1", "digits-cnn quantized: fully offloaded, by design", call("summarize", REPORTS["digits-cnn-qdq"]), equal(),
     public=True)
for name in ("digits-cnn-fixed", "mlp-gelu-qdq", "mlp-gelu-fused-qdq", "erf-head"):
    case("q1", f"the recorded report of {name}", call("summarize", REPORTS[name]), same)
case("q1", "erf-mlp-qdq: the operator comes from the reason, not from the node's type",
     call("summarize", REPORTS["erf-mlp-qdq"]), same, weight=2)
case("q1", "an empty report", call("summarize", report()), same)
case("q1", "only by-design nodes on the CPU and nothing on QNN: not offloaded",
     call("summarize", report(("QuantizeLinear", CPU, IO), ("Relu", CPU, "Cannot get shape"))), same)
case("q1", "two missing operators, each named once, sorted; another EP counts as off QNN",
     call("summarize", report(("Conv", QNN, ""), ("Hardmax", CPU, unsupported("Hardmax")),
                              ("Erf", CPU, unsupported("Erf")), ("DequantizeLinear", CPU, unsupported("Erf")),
                              ("Gemm", "XnnpackExecutionProvider", "not offered to QNN"), ("Relu", QNN, ""))),
     same, weight=2)
case("q1", "everything on QNN", call("summarize", report(("Conv", QNN, ""), ("Relu", QNN, ""))), same)

# -- q2: fix the batch dimension --------------------------------------------------------------------------
case("q2", "digits-cnn: batch 1", call("shapes_after", ref("fix_batch"), "digits-cnn"), equal(), public=True)
case("q2", "digits-cnn runs with the fixed shape", call("run_after", ref("fix_batch"), "digits-cnn"), equal(),
     public=True)
case("q2", "batch 4", call("shapes_after", ref("fix_batch"), "digits-cnn", 4), same)
case("q2", "runs with batch 3", call("run_after", ref("fix_batch"), "digits-cnn", 3), same)
case("q2", "only the first dimension: 'seq' stays dynamic, two inputs",
     call("shapes_after", ref("fix_batch"), "two-inputs"), same, weight=2)
case("q2", "an unnamed dynamic batch", call("shapes_after", ref("fix_batch"), "unnamed-batch"), same, weight=2)
case("q2", "an unnamed dynamic batch runs", call("run_after", ref("fix_batch"), "unnamed-batch", 2), same)
case("q2", "a fixed first dimension stays as it is", call("shapes_after", ref("fix_batch"), "static", 4), same)
case("q2", "mlp-gelu, batch 2", call("shapes_after", ref("fix_batch"), "mlp-gelu", 2), same)

# -- q3: QDQ quantization -----------------------------------------------------------------------------------


def quantized(name, part):
    return lambda ns: ns.quantize_after(ns.quantize_qdq, name)[part]


case("q3", "digits-cnn: shapes, op counts and number formats",
     call("quantize_after", ref("quantize_qdq"), "digits-cnn"), equal(), public=True)
case("q3", "digits-cnn still agrees with the float model (>= 97% of the test digits)",
     lambda ns: ns.agreement_after(ns.quantize_qdq), within(0.97, 1.0), weight=2)
for name in ("mlp-gelu", "erf-mlp"):
    case("q3", f"{name}: batch fixed to 1", quantized(name, "shapes"), same)
    case("q3", f"{name}: QuantizeLinear / DequantizeLinear nodes", quantized(name, "ops"), same)
    case("q3", f"{name}: int8 per-channel weights", quantized(name, "weights"), same)
    case("q3", f"{name}: uint8 activations", quantized(name, "activations"), same)

# -- q4: fuse the GELU ---------------------------------------------------------------------------------------
case("q4", "mlp-gelu: one Gelu, opset 20", call("rewrite_after", ref("fuse_gelu"), "mlp-gelu"), equal(), public=True)
case("q4", "mlp-gelu computes the same", call("rewrite_diff", ref("fuse_gelu"), "mlp-gelu"), within(0.0, 1e-5),
     public=True)
case("q4", "two GELUs, the second with its inputs in the other order",
     call("rewrite_after", ref("fuse_gelu"), "mlp-gelu-2"), same, weight=2)
case("q4", "two GELUs compute the same", call("rewrite_diff", ref("fuse_gelu"), "mlp-gelu-2"), within(0.0, 1e-5))
case("q4", "a GELU on the graph input, writing the graph output",
     call("rewrite_after", ref("fuse_gelu"), "gelu-on-input"), same)
case("q4", "it computes the same", call("rewrite_diff", ref("fuse_gelu"), "gelu-on-input"), within(0.0, 1e-5))
case("q4", "an Erf read by another node too: left alone", call("rewrite_after", ref("fuse_gelu"), "gelu-shared"),
     same, weight=2)
for name in ("erf-head", "erf-mlp", "digits-cnn"):
    case("q4", f"{name} has no GELU: unchanged, opset included", call("rewrite_after", ref("fuse_gelu"), name), same)
