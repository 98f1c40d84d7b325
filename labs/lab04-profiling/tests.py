"""Tests of Lab 4 (per-operator profiling). All cases run on recorded traces or on small synthetic
ones built here: nothing depends on the speed of the student's machine."""

import json
import random
from pathlib import Path

from edgekit.grading import against, call, case, close, equal, obj, raised, ref
from edgekit.perf.profiler import parse_trace

HERE = Path(__file__).parent
events = json.loads((HERE / "digits-cnn-ort1.32.json").read_text())       # the lab's public files
mnv2 = json.loads((HERE / "mobilenetv2-224-ort1.32.json").read_text())


def synthetic(runs, *, fences=False, shuffle=False, seed=0):
    """A trace in ORT's shape: per run, its kernels, then SequentialExecutor::Execute and model_run
    written *after* them (as ORT does). ``runs`` is a list of runs, each a list of (name, op, dur)."""
    out = [{"cat": "Session", "name": "model_loading_uri", "ts": 1, "dur": 900, "ph": "X", "args": {}},
           {"cat": "Session", "name": "session_initialization", "ts": 950, "dur": 3000, "ph": "X", "args": {}}]
    t = 5000
    for kernels in runs:
        start = t
        t += 3
        for name, op, dur in kernels:
            if fences:
                out.append({"cat": "Node", "name": f"{name}_fence_before", "ts": t, "dur": 0, "ph": "X",
                            "args": {"op_name": op}})
                t += 1
            out.append({"cat": "Node", "name": f"{name}_kernel_time", "ts": t, "dur": dur, "ph": "X",
                        "args": {"op_name": op, "provider": "CPUExecutionProvider",
                                 "input_type_shape": [{"float": [1, 8, 4, 4]}, {"float": [8, 8, 3, 3]}]}})
            t += dur + 2
            if fences:
                out.append({"cat": "Node", "name": f"{name}_fence_after", "ts": t, "dur": 0, "ph": "X",
                            "args": {"op_name": op}})
                t += 1
        out.append({"cat": "Session", "name": "SequentialExecutor::Execute", "ts": start + 1, "dur": t - start - 1,
                    "ph": "X", "args": {}})
        out.append({"cat": "Session", "name": "model_run", "ts": start, "dur": t - start + 2, "ph": "X", "args": {}})
        t += 40
    if shuffle:
        random.Random(seed).shuffle(out)
    return out


def net(scale):
    return [("conv1", "Conv", 30 * scale), ("relu1", "Relu", 4), ("conv2", "Conv", 50 * scale),
            ("pool", "MaxPool", 6), ("fc", "Gemm", 12)]


tiny = synthetic([[("conv", "Conv", 9), ("fc", "Gemm", 3)], [("conv", "Conv", 4), ("fc", "Gemm", 2)]], fences=True)
warm = synthetic([net(5), net(1), net(1), [(n, o, d + 1) for n, o, d in net(1)]], fences=True, shuffle=True, seed=1)
plain3 = synthetic([net(2), net(1), net(1)])


def oracle(trace, skip_runs):
    """edgekit.perf.profiler.parse_trace, written independently of the reference answers: an oracle."""
    r = parse_trace(trace, skip_runs=skip_runs)
    return {o.op_type: o.total_us for o in r.op_types}


exact = close(rtol=0, atol=0)  # dicts of integer totals: exact, with the first wrong key named


# -- q1: load a trace, keep the kernel events ------------------------------------------------------
case("q1", "load a small trace file", call("load_events", obj("lab04_support:write_trace", tiny)), equal(), public=True)
case("q1", "kernel events of a small trace, fences dropped", call("node_events", tiny), equal(), public=True)
case("q1", "load the committed digits-cnn trace", call("load_events", ref("TRACE")), equal())
case("q1", "kernel events of the committed trace, in time order", call("node_events", ref("events")), equal())
case("q1", "a trace in the {'traceEvents': [...]} layout",
     call("load_events", obj("lab04_support:write_trace", plain3, layout="chrome")), equal())
case("q1", "a trace in ORT's list layout", call("load_events", obj("lab04_support:write_trace", plain3)), equal())
case("q1", "fence events and Session events are dropped, shuffled events sorted by ts",
     call("node_events", warm), equal(), weight=2)
case("q1", "no events (and the small trace's)", lambda ns: [ns.node_events([]), ns.node_events(tiny)],
     equal())

# -- q2: kernels of the measured runs, time per op type --------------------------------------------
case("q2", "digits-cnn, warm-up run skipped", call("time_per_op_type", ref("events"), skip_runs=1), equal(), public=True)
case("q2", "measured kernels: 5 runs x 7 kernels",
     lambda ns: len(ns.measured_kernels(events, 1)), equal(), public=False)
case("q2", "digits-cnn, no run skipped", call("time_per_op_type", events), exact)
case("q2", "digits-cnn, only the last run", call("time_per_op_type", events, skip_runs=5), exact)
case("q2", "agrees with edgekit.perf.profiler.parse_trace (skip 1)", call("time_per_op_type", events, skip_runs=1),
     against(oracle(events, 1), close(1e-9, 1e-9)))
case("q2", "mobilenetv2-224: agrees with edgekit.perf.profiler.parse_trace", call("time_per_op_type", mnv2, skip_runs=1),
     against(oracle(mnv2, 1), close(1e-9, 1e-9)))
case("q2", "shuffled events with fences: runs are matched by timestamp", call("time_per_op_type", warm, skip_runs=1),
     exact, weight=2)
case("q2", "skip_runs >= number of runs raises ValueError",
     lambda ns: raised(lambda: ns.time_per_op_type(plain3, skip_runs=3))[0], equal(), weight=0.5)

# -- q3: shares and the bottleneck -----------------------------------------------------------------
pow2 = {"Conv": 64, "Gemm": 32, "MaxPool": 16, "Relu": 16}  # a total of 128: every share is exact
digits_ops = oracle(events, 1)
mnv2_ops = oracle(mnv2, 1)
case("q3", "shares of a simple profile", call("share", pow2), equal(), public=True)
case("q3", "bottleneck of a simple profile", call("bottleneck", pow2), equal(), public=True)
case("q3", "shares of digits-cnn", call("share", digits_ops), close(1e-9, 1e-9))
case("q3", "bottleneck of digits-cnn", call("bottleneck", digits_ops), close(1e-9, 1e-9))
case("q3", "bottleneck of mobilenetv2-224", call("bottleneck", mnv2_ops), close(1e-9, 1e-9))
case("q3", "a tie goes to the op type first in alphabetical order",
     call("bottleneck", {"Relu": 10, "Add": 10, "Conv": 5}), close(1e-9, 1e-9))
case("q3", "shares add up to 1", lambda ns: sum(ns.share(mnv2_ops).values()), close(atol=1e-9))

# -- q4: how much of a run is kernels; what the profiler costs -------------------------------------
case("q4", "kernel fraction of digits-cnn", call("kernel_fraction", ref("events"), skip_runs=1), close(rtol=1e-9),
     public=True)
case("q4", "profiler cost per kernel, digits-cnn", call("profiler_cost_per_kernel", ref("events"), 11.3, skip_runs=1),
     close(rtol=1e-9), public=True)
case("q4", "kernel fraction agrees with edgekit.perf.profiler.parse_trace", call("kernel_fraction", mnv2, skip_runs=1),
     against(parse_trace(mnv2, skip_runs=1).node_time_fraction, close(rtol=1e-9)))
case("q4", "kernel fraction, no run skipped", call("kernel_fraction", events), close(rtol=1e-9))
case("q4", "kernel fraction of a shuffled trace with fences", call("kernel_fraction", warm, skip_runs=1),
     close(rtol=1e-9))
case("q4", "profiler cost per kernel: an even number of runs (median of two middle runs)",
     call("profiler_cost_per_kernel", warm, 40.0, skip_runs=0), close(rtol=1e-9))
case("q4", "profiler cost per kernel, mobilenetv2-224", call("profiler_cost_per_kernel", mnv2, 7930.0, skip_runs=1),
     close(rtol=1e-9))

# -- q5: which convolutions take the time ----------------------------------------------------------
mnv2_kernels = sorted((e for e in mnv2 if e["cat"] == "Node"), key=lambda e: e["ts"])
convs = [e for e in mnv2_kernels if e["args"]["op_name"] == "Conv"]
depthwise = next(e for e in convs if e["name"].startswith("conv_2."))
pointwise = next(e for e in convs if e["name"].startswith("conv_3_"))
residual = next(e for e in convs if len(e["args"]["input_type_shape"]) == 4)  # Add fused in: 4 inputs
first_digits = next(e for e in events if e["cat"] == "Node")  # 1 input channel, 16 filters: not depthwise
fused = synthetic([[("c1", "FusedConv", 20), ("c2", "Conv", 30), ("r", "Relu", 3)]] * 2)
case("q5", "a depthwise convolution", call("conv_kind", depthwise), equal(), public=True)
case("q5", "time per kind of convolution, mobilenetv2-224", call("time_per_conv_kind", ref("mnv2_events"), skip_runs=1),
     equal(), public=True)
case("q5", "a pointwise convolution", call("conv_kind", pointwise), equal())
case("q5", "a convolution with the residual Add fused in (4 inputs)", call("conv_kind", residual), equal())
case("q5", "the first conv of mobilenetv2 (3x3, 3 channels in)", call("conv_kind", convs[0]), equal())
case("q5", "one input channel and 16 filters is a standard conv, not depthwise", call("conv_kind", first_digits),
     equal())
case("q5", "every conv of mobilenetv2-224", lambda ns: [ns.conv_kind(e) for e in convs[:52]], equal())
case("q5", "digits-cnn: only standard convolutions", call("time_per_conv_kind", events, skip_runs=1), exact)
case("q5", "FusedConv kernels count as convolutions", call("time_per_conv_kind", fused), exact)
