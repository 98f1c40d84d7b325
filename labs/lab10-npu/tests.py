"""Tests of Lab 10 (NPU readiness). Nothing here needs the qnn extra: placement reports were recorded
with the HTP emulator (lab10_reports.json, a public file) or are built here; the graph questions run
the student's functions on the example models of lab10_support and compare shapes, op counts, number
formats and outputs (ONNX Runtime's CPU EP) with the reference solution's.

Hidden verdicts never rest on what a helper computes in the student's process: the grader takes the
model the student's function returns (its serialized bytes) and looks at it here, with a trusted
copy of lab10_support loaded from this folder."""

import importlib.util
import json
from pathlib import Path

import onnx

from edgekit.grading import call, case, equal, load_lab
from edgekit.grading.fenced import fenced_call, plain_model

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("lab10_support_grader", HERE / "lab10_support.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)
MAX_MODEL_BYTES = 2_000_000  # the examples are a few kB; digits-cnn 87 kB
LIMITS = load_lab(HERE).limits


def fenced(fn, *args):
    """``fn(*args)`` on a student's model, in a fenced child process with the lab's limits (never in the judge)."""
    # ONNX Runtime's threads add CPU seconds faster than wall seconds: the wall limit is the one that binds
    return fenced_call(fn, *args, wall_s=LIMITS.call_s, cpu_s=4 * LIMITS.call_s, memory_mb=LIMITS.memory_mb)


REPORTS = json.loads((HERE / "lab10_reports.json").read_text())["reports"]
QNN, CPU = "QNNExecutionProvider", "CPUExecutionProvider"
IO = "QNN EP is configured to not take Q nodes that consume a graph input (by design: offload_graph_io_quantization)"


def report(*nodes):
    """A synthetic report: nodes given as (op_type, ep, reason)."""
    return {"schema": "edgekit.npu/1",
            "nodes": [{"name": f"/n{i}", "op_type": op, "domain": "", "ep": ep, "reason": why}
                      for i, (op, ep, why) in enumerate(nodes)]}


def unsupported(op):
    return f"Operators of type `{op}` are not supported by QNN EP"


# -- q1: summarise a placement report -------------------------------------------------------------------
case("q1", "digits-cnn as exported (dynamic batch)", call("summarize", REPORTS["digits-cnn"]), equal(), public=True)
case("q1", "digits-cnn quantized: fully offloaded, by design", call("summarize", REPORTS["digits-cnn-qdq"]), equal(),
     public=True)
for name in ("digits-cnn-fixed", "mlp-gelu-qdq", "mlp-gelu-fused-qdq", "erf-head"):
    case("q1", f"the recorded report of {name}", call("summarize", REPORTS[name]), equal())
case("q1", "erf-mlp-qdq: the operator comes from the reason, not from the node's type",
     call("summarize", REPORTS["erf-mlp-qdq"]), equal(), weight=2)
case("q1", "an empty report", call("summarize", report()), equal())
case("q1", "only by-design nodes on the CPU and nothing on QNN: not offloaded",
     call("summarize", report(("QuantizeLinear", CPU, IO), ("Relu", CPU, "Cannot get shape"))), equal())
case("q1", "two missing operators, each named once, sorted; another EP counts as off QNN",
     call("summarize", report(("Conv", QNN, ""), ("Hardmax", CPU, unsupported("Hardmax")),
                              ("Erf", CPU, unsupported("Erf")), ("DequantizeLinear", CPU, unsupported("Erf")),
                              ("Gemm", "XnnpackExecutionProvider", "not offered to QNN"), ("Relu", QNN, ""))),
     equal(), weight=2)
case("q1", "everything on QNN", call("summarize", report(("Conv", QNN, ""), ("Relu", QNN, ""))), equal())

# -- what the student's functions return, looked at here ----------------------------------------------------


def model_of(returned) -> onnx.ModelProto:
    """The model a student's function returned, from its bytes; refused unless it is a plain, small,
    self-contained graph that is safe to run (edgekit.grading.fenced.plain_model)."""
    return plain_model(returned.SerializeToString(), MAX_MODEL_BYTES)


def fixed(name, *args):
    return lambda ns: model_of(ns.fix_batch(ns.example(name), *args))


def shapes_of(name, *args):
    return lambda ns: support.shapes(fixed(name, *args)(ns))


def runs(name, *args):
    """The output shapes when the fixed model runs on random inputs of its (now fixed) input shapes."""
    def target(ns):
        model = fixed(name, *args)(ns)
        return fenced(lambda m: [list(o.shape) for o in support.run(m, support.feeds(m))], model)
    return target


def quantized_model(ns, name, n=64):
    return model_of(ns.quantize_qdq(ns.example(name), ns.calibration(name, n)))


def agreement(ns, name="digits-cnn"):
    """Is the model quantized (QDQ nodes), and does its top-1 class equal the float model's on >= 97% of the
    digits test images? Both measured here: the float model returned as it was agrees on 100%."""
    import numpy as np

    import edgekit

    model = quantized_model(ns, name)
    x = edgekit.datasets.digits("test")[0]

    def agreement_of(m):
        q, f = support._session(m), support._session(support.example(name))
        return float(np.mean([q.run(None, {"input": xi[None]})[0].argmax() == f.run(None, {"input": xi[None]})[0].argmax()
                              for xi in x]))

    agree = fenced(agreement_of, model)
    return {"quantized": support.op_counts(model).get("QuantizeLinear", 0) > 0, "agrees on >= 97%": agree >= 0.97}


def rewritten(ns, name):
    """What the student's fuse_gelu made of the example: op counts, opset, outputs, stored tensors."""
    model = model_of(ns.fuse_gelu(ns.example(name)))
    onnx.checker.check_model(model)
    return {"ops": support.op_counts(model), "opset": support.opset(model),
            "outputs": [o.name for o in model.graph.output],
            "initializers": sorted(t.name for t in model.graph.initializer)}


def computes_the_same(name):
    """How many Gelu nodes the student's rewrite has, and whether it computes what the original does (largest
    output difference <= 1e-5 on the same random inputs), both measured here: leaving the model as it was
    computes the same too, but has no Gelu."""
    def target(ns):
        import numpy as np

        model, original = model_of(ns.fuse_gelu(ns.example(name))), support.example(name)
        dims = {k: [v if isinstance(v, int) else 1 for v in d] for k, d in support.shapes(original)["inputs"].items()}
        feed = {k: np.random.default_rng(1).normal(size=d).astype(np.float32) * 3 for k, d in dims.items()}
        diff = fenced(lambda m: max(float(np.abs(a - b).max()) for a, b in zip(support.run(m, feed),
                                                                              support.run(original, feed))), model)
        return {"Gelu nodes": support.op_counts(model).get("Gelu", 0), "difference <= 1e-5": diff <= 1e-5}
    return target


# -- q2: fix the batch dimension --------------------------------------------------------------------------
case("q2", "digits-cnn: batch 1", call("fixed_shapes", "digits-cnn"), equal(), public=True)
case("q2", "digits-cnn: batch 1 (looked at by the grader)", shapes_of("digits-cnn"), equal())
case("q2", "digits-cnn runs with the fixed shape", runs("digits-cnn"), equal())
case("q2", "batch 4", shapes_of("digits-cnn", 4), equal())
case("q2", "runs with batch 3", runs("digits-cnn", 3), equal())
case("q2", "only the first dimension: 'seq' stays dynamic, two inputs", shapes_of("two-inputs"), equal(), weight=2)
case("q2", "an unnamed dynamic batch", shapes_of("unnamed-batch"), equal(), weight=2)
case("q2", "an unnamed dynamic batch runs", runs("unnamed-batch", 2), equal())
case("q2", "a fixed first dimension stays as it is", shapes_of("static", 4), equal())
case("q2", "mlp-gelu, batch 2", shapes_of("mlp-gelu", 2), equal())

# -- q3: QDQ quantization -----------------------------------------------------------------------------------


def quantized(name, part):
    def target(ns):
        model = quantized_model(ns, name)
        facts = {"shapes": support.shapes(model), "ops": support.op_counts(model), **support.quantization(model)}
        return facts[part]
    return target


case("q3", "digits-cnn: shapes, op counts and number formats", call("quantized_summary", "digits-cnn"), equal(),
     public=True)
for part in ("shapes", "ops", "weights", "activations"):
    case("q3", f"digits-cnn: {part} (looked at by the grader)", quantized("digits-cnn", part), equal(), weight=0.5)
case("q3", "digits-cnn still agrees with the float model (>= 97% of the test digits, measured by the grader)",
     agreement, equal(), weight=2)
for name in ("mlp-gelu", "erf-mlp"):
    case("q3", f"{name}: batch fixed to 1", quantized(name, "shapes"), equal())
    case("q3", f"{name}: QuantizeLinear / DequantizeLinear nodes", quantized(name, "ops"), equal())
    case("q3", f"{name}: int8 per-channel weights", quantized(name, "weights"), equal())
    case("q3", f"{name}: uint8 activations", quantized(name, "activations"), equal())

# -- q4: fuse the GELU ---------------------------------------------------------------------------------------
case("q4", "mlp-gelu: one Gelu, opset 20", call("fused_summary", "mlp-gelu"), equal(), public=True)
case("q4", "mlp-gelu: one Gelu, opset 20 (looked at by the grader)", lambda ns: rewritten(ns, "mlp-gelu"), equal())
case("q4", "mlp-gelu computes the same (measured by the grader)", computes_the_same("mlp-gelu"), equal())
case("q4", "two GELUs, the second with its inputs in the other order", lambda ns: rewritten(ns, "mlp-gelu-2"), equal(),
     weight=2)
case("q4", "two GELUs compute the same", computes_the_same("mlp-gelu-2"), equal())
case("q4", "a GELU on the graph input, writing the graph output", lambda ns: rewritten(ns, "gelu-on-input"), equal())
case("q4", "it computes the same", computes_the_same("gelu-on-input"), equal())
case("q4", "an Erf read by another node too: left alone", lambda ns: rewritten(ns, "gelu-shared"), equal(), weight=2)
for name in ("erf-head", "erf-mlp", "digits-cnn"):
    case("q4", f"{name} has no GELU: unchanged, opset included", lambda ns, n=name: rewritten(ns, n), equal())
