"""What edgekit costs on top of raw ONNX Runtime: whole process, per call, import time, doctor time.

    python benchmarks/overhead.py [--out benchmarks/results/overhead.json] [--only-process]

Whole process: CPU time (user + system, from getrusage) of a fresh interpreter that loads the
one-op model and runs it once, ``ek.load(path)`` against ``ort.InferenceSession(path)``; the
two are interleaved, byte-compiled as an install would be, and the ratio is the median of the
per-pair ratios.

Per-call: a one-op model (Relu on float32[1,16], 1 thread), timed in this one process with the
variants interleaved in rounds (raw InferenceSession.run, Model.run, Model.run without the NaN
check, pre-bound IOBinding), so drift and background load hit all of them alike. Each round
times a block of calls with perf_counter and divides; the figure is the median over rounds, and
the ratio is computed per round, then its median taken. Import and doctor times run in fresh
subprocesses (median of several).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

import edgekit as ek


def one_op_model(path: Path) -> Path:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def per_call(path: Path, rounds: int, calls: int) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    raw = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    m = ek.load(path, providers="cpu", threads=1)
    m_nonan = ek.load(path, providers="cpu", threads=1, check_nan=False)
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    feed = {"x": x}
    binding = raw.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y")
    np.testing.assert_array_equal(m(x)[0], raw.run(None, feed)[0])  # same answer before timing
    variants = {
        "raw_session_run": lambda: raw.run(None, feed),
        "model_run": lambda: m.run(feed),
        "model_call_array": lambda: m(x),
        "model_run_no_nan_check": lambda: m_nonan.run(feed),
        "raw_iobinding_prebound": lambda: raw.run_with_iobinding(binding),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - t) / calls * 1e6)
    out = {name: statistics.median(v) for name, v in times.items()}
    ratios = [mr / rr for mr, rr in zip(times["model_run"], times["raw_session_run"])]
    out["model_run_over_raw_ratio"] = statistics.median(ratios)
    out["model_run_over_raw_ratio_range"] = [min(ratios), max(ratios)]
    return out


def subprocess_seconds(cmd: list[str], repeats: int) -> dict:
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "runs": repeats}


# Whole processes: what a student's script costs from start to exit, edgekit against raw ONNX Runtime.
# Each child is handed the model path and the input in argv; both variants do the same work.
PROCESS = {
    "raw_onnxruntime": "import sys, numpy as np, onnxruntime as ort; "
                       "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider']); "
                       "s.run(None, {'x': np.ones((1, 16), np.float32)})",
    "edgekit": "import sys, numpy as np, edgekit as ek; "
               "m = ek.load(sys.argv[1]); m(np.ones((1, 16), np.float32))",
}


def child_cpu_s(code: str, path: Path, env: dict) -> float:
    """User + system CPU seconds of one fresh interpreter running ``code`` (getrusage of children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def process_cpu(path: Path, repeats: int) -> dict:
    """Median CPU time of a whole process per variant, the variants interleaved (A B, B A, ...) so
    drift hits both alike; the ratio is taken per pair, then its median."""
    # As installed: byte-compiled. Children write their .pyc under one private prefix (not into the
    # checkout, and whatever PYTHONDONTWRITEBYTECODE says here); a first run of each fills it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(path.parent / "edgekit-overhead-pycache")
    for code in PROCESS.values():
        child_cpu_s(code, path, env)
    cpu: dict[str, list[float]] = {k: [] for k in PROCESS}
    for i in range(repeats):
        for name in (list(PROCESS) if i % 2 == 0 else list(PROCESS)[::-1]):
            cpu[name].append(child_cpu_s(PROCESS[name], path, env))
    ratios = [e / r for e, r in zip(cpu["edgekit"], cpu["raw_onnxruntime"])]
    out = {f"{k}_ms": statistics.median(v) * 1e3 for k, v in cpu.items()}
    out["extra_ms"] = statistics.median(e - r for e, r in zip(cpu["edgekit"], cpu["raw_onnxruntime"])) * 1e3
    out.update(edgekit_over_raw_ratio=statistics.median(ratios),
               ratio_quartiles=statistics.quantiles(ratios, n=4), runs=repeats,
               code=PROCESS)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results/overhead.json")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--processes", type=int, default=40, help="fresh interpreters per variant (whole-process CPU)")
    p.add_argument("--only-process", action="store_true", help="measure only the whole-process CPU ratio")
    args = p.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "edgekit-overhead-relu.onnx"
    result = {"benchmark": "overhead", "edgekit": ek.__version__, "onnxruntime": ort.__version__,
              "device": ek.device_info().to_dict()}
    one_op_model(tmp)
    pcpu = result["process_cpu"] = process_cpu(tmp, args.processes)
    print(f"whole process, ek.load(path) + one run vs raw InferenceSession + one run (CPU time, median of "
          f"{args.processes}): {pcpu['edgekit_ms']:.0f} ms vs {pcpu['raw_onnxruntime_ms']:.0f} ms = "
          f"{pcpu['edgekit_over_raw_ratio']:.3f}x, +{pcpu['extra_ms']:.1f} ms (ratio quartiles {pcpu['ratio_quartiles'][0]:.3f}-{pcpu['ratio_quartiles'][2]:.3f})")
    if args.only_process:
        return
    result["per_call_us"] = per_call(tmp, args.rounds, args.calls)
    # Python's own start-up, subtracted so the figure is edgekit's import alone.
    bare = subprocess_seconds([sys.executable, "-c", "pass"], 7)
    imp = subprocess_seconds([sys.executable, "-c", "import edgekit"], 7)
    result["import_edgekit_ms"] = (imp["median_s"] - bare["median_s"]) * 1e3
    result["python_startup_ms"] = bare["median_s"] * 1e3
    result["doctor_s"] = subprocess_seconds([sys.executable, "-m", "edgekit", "doctor", "--json"], 3)
    pc = result["per_call_us"]
    print(f"per call (median of {args.rounds} rounds x {args.calls} calls, 1-op model, 1 thread):")
    for k in ("raw_session_run", "model_run", "model_call_array", "model_run_no_nan_check", "raw_iobinding_prebound"):
        print(f"  {k:<24} {pc[k]:6.2f} us")
    lo, hi = pc["model_run_over_raw_ratio_range"]
    print(f"  Model.run / raw run       {pc['model_run_over_raw_ratio']:.3f}x (per-round range {lo:.3f}-{hi:.3f})")
    print(f"import edgekit             {result['import_edgekit_ms']:.1f} ms (beyond {result['python_startup_ms']:.1f} ms of bare python)")
    print(f"edgekit doctor --json      {result['doctor_s']['median_s']:.2f} s (median of 3)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
