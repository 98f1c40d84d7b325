"""Helpers for Lab 11 (the capstone): the budget, what the grader checks about a deployed model, the
consistency checks of a benchmark report, and the generator of the (simulated) table of measured
configurations ``lab11_candidates.json``.

The grader never times your code: it reads the model file your ``deploy()`` wrote and checks that
it loads, how accurate it is and how big it is; and it checks that your report agrees with itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The deployment budget of the capstone (question 2): a doorbell-sized device with little flash.
BUDGET = {"min_accuracy": 0.97, "max_size_bytes": 40_000}

REPORT_KEYS = ("model", "precision", "threads", "optimization", "batch", "size_bytes", "accuracy",
               "samples_ms", "p50_ms", "min_ms", "max_ms", "baseline_p50_ms", "speedup")


def file_bytes(path) -> bytes:
    """The bytes of a file (the grader evaluates your deployed model from these)."""
    return Path(path).read_bytes()


def audit_bytes(model: bytes) -> dict:
    """Load an ONNX model from its bytes; its top-1 accuracy on the digits test split, and its size.

    ``{"loads": bool, "error": str, "accuracy": float, "size_bytes": int}``. The model must take a
    float32 batch ``(N, 1, 8, 8)`` (any N) as its first input and give 10 class scores per image,
    and hold all its weights in its own bytes (no ONNX external data: see :func:`external_files`).
    """
    import onnxruntime as ort

    import edgekit

    out = {"loads": False, "error": "", "accuracy": 0.0, "size_bytes": len(model)}
    try:
        files = external_files(model)
        if files:  # refused before ONNX Runtime could open them: the grader reads nothing a model names
            out["error"] = (f"your model stores weights as external data (file {files[0]!r}); the grader audits "
                            "the model's own bytes only: save it as one file with "
                            "onnx.save(model, path, save_as_external_data=False)")
            return out
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])  # bytes, never a path
        x, y = edgekit.datasets.digits("test")
        scores = session.run(None, {session.get_inputs()[0].name: x})[0]
        out["accuracy"] = float((np.asarray(scores).reshape(len(x), -1).argmax(1) == y).mean())
        out["loads"] = True
    except Exception as exc:  # a broken file, a wrong input shape...
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


def external_files(model: bytes) -> list[str]:
    """The files that tensors of an ONNX model (given as bytes) name as *external data*; [] when every
    weight is inside. Subgraphs (``Loop``, ``If``) and functions count too. Nothing is opened."""
    import onnx

    proto = onnx.load_model_from_string(model)  # from bytes: external data is never loaded this way
    graphs = [proto.graph] + [g for t in proto.training_info for g in (t.initialization, t.algorithm)]
    nodes = [n for f in proto.functions for n in f.node]
    tensors = []
    while graphs or nodes:
        if graphs:
            g = graphs.pop()
            tensors += list(g.initializer) + [t for s in g.sparse_initializer for t in (s.values, s.indices)]
            nodes += list(g.node)
            continue
        for a in nodes.pop().attribute:
            tensors += ([a.t] if a.HasField("t") else []) + list(a.tensors)
            sparse = ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors)
            tensors += [t for s in sparse for t in (s.values, s.indices)]
            graphs += ([a.g] if a.HasField("g") else []) + list(a.graphs)
    return [dict((e.key, e.value) for e in t.external_data).get("location", "?") for t in tensors
            if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data)]


def audit_fenced(model: bytes, *, wall_s: float, memory_mb: int) -> dict:
    """:func:`audit_bytes` as the grader runs it: in a fenced child process (``edgekit.grading.fenced``),
    so that a model that loops for ever, crashes ONNX Runtime or exhausts memory fails its own audit
    after ``wall_s`` seconds, and nothing else. Linux and macOS (it needs ``os.fork``)."""
    import onnx  # noqa: F401  (imported once here: the forked child inherits it, and the test split)
    import onnxruntime  # noqa: F401

    import edgekit
    from edgekit.grading.fenced import FencedCallError, fenced_call

    edgekit.datasets.digits("test")
    try:
        return fenced_call(audit_bytes, model, wall_s=wall_s, memory_mb=memory_mb)
    except FencedCallError as exc:
        # e.g. "audit_bytes did not finish within wall_s = 30 s": an ONNX Loop, a huge tensor, a crash
        error = f"the grader stopped auditing your model ({exc}); run lab11_support.audit(path) on your file"
        return {"loads": False, "error": error, "accuracy": 0.0, "size_bytes": len(model)}


def audit(path) -> dict:
    """:func:`audit_bytes` of the file at ``path``."""
    return audit_bytes(file_bytes(path))


def report_problems(report: dict) -> list[str]:
    """What is inconsistent in a benchmark report (an empty list: nothing). See question 3."""
    if not isinstance(report, dict):
        return [f"report() must return a dict, got {type(report).__name__}"]
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing:
        return [f"missing keys: {missing}"]
    problems = []
    s = np.asarray(report["samples_ms"], dtype=np.float64)
    if s.ndim != 1 or len(s) < 100:
        return [f"samples_ms must hold at least 100 latencies, got {s.shape}"]
    if not np.isclose(report["min_ms"], s.min(), rtol=1e-9) or not np.isclose(report["max_ms"], s.max(), rtol=1e-9):
        problems.append(f"min_ms/max_ms {report['min_ms']}/{report['max_ms']} are not the min/max of samples_ms "
                        f"({s.min()}/{s.max()})")
    if not report["min_ms"] <= report["p50_ms"] <= report["max_ms"]:
        problems.append(f"p50_ms {report['p50_ms']} is not between min_ms and max_ms")
    if not np.isclose(report["p50_ms"], np.median(s), rtol=1e-9):
        problems.append(f"p50_ms {report['p50_ms']} is not the median of samples_ms ({np.median(s)})")
    if not np.isclose(report["speedup"], report["baseline_p50_ms"] / report["p50_ms"], rtol=1e-9):
        problems.append(f"speedup {report['speedup']} is not baseline_p50_ms / p50_ms "
                        f"({report['baseline_p50_ms'] / report['p50_ms']})")
    if report["precision"] not in ("fp32", "int8"):
        problems.append(f"precision must be 'fp32' or 'int8', got {report['precision']!r}")
    for k in ("threads", "batch"):
        if not isinstance(report[k], int) or isinstance(report[k], bool) or report[k] < 0 + (k == "batch"):
            problems.append(f"{k} must be an int (threads >= 0, batch >= 1), got {report[k]!r}")
    if report["optimization"] not in ("disable", "basic", "extended", "all"):
        problems.append(f"optimization must be one of disable/basic/extended/all, got {report['optimization']!r}")
    return problems


def simulate_candidates(seed: int = 11) -> dict:
    """The SIMULATED table of question 1: configurations of digits-cnn "measured" on a Raspberry Pi 5.

    Latencies follow simple rules of thumb (int8 ~0.6x fp32, a second thread helps little for a
    model this small, a batch of b takes ~0.35 + 0.65 b times one image, optimization 'disable'
    ~1.3x) with noise; accuracies and sizes are those of the real fp32 and static int8 models.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for precision, acc, size in (("fp32", 0.9863, 87411), ("int8", 0.9863, 29339), ("int8-per-tensor", 0.9588, 27120)):
        for threads in (1, 2, 4):
            for optimization in ("disable", "all"):
                for batch in (1, 8, 32):
                    base = 0.110 * (0.6 if precision != "fp32" else 1.0) * (1.3 if optimization == "disable" else 1.0)
                    base *= {1: 1.0, 2: 0.85, 4: 0.95}[threads]  # threads cost hand-over time on a tiny model
                    p50 = base * (0.35 + 0.65 * batch) * rng.lognormal(0, 0.04)
                    p99 = p50 * (1.6 + 0.8 * rng.random()) * (1.4 if threads == 4 else 1.0)
                    rows.append({"name": f"{precision}-t{threads}-{optimization}-b{batch}", "precision": precision,
                                 "threads": threads, "optimization": optimization, "batch": batch,
                                 "p50_ms": round(float(p50), 4), "p99_ms": round(float(p99), 4),
                                 "accuracy": acc, "size_bytes": size})
    return {"note": "SIMULATED with lab11_support.simulate_candidates(): rules of thumb, not a measurement. "
                    "p50_ms/p99_ms: latency of one run of the whole batch", "candidates": rows}


if __name__ == "__main__":  # regenerate the shipped table:  python lab11_support.py
    import json

    Path(__file__).with_name("lab11_candidates.json").write_text(json.dumps(simulate_candidates(), indent=0) + "\n")
