"""Tests of Lab 3 (threads, graph optimizations, execution providers). Nothing here depends on the speed
of the machine: options are read back as data, outputs are compared with the reference's on fixed
inputs, graphs are counted, and the thread analysis runs on the recorded (simulated) Pi 5 data."""

import json
from pathlib import Path

import numpy as np

import edgekit
from edgekit.grading import call, case, close, equal, obj, raised, within

HERE = Path(__file__).parent
RECORDS = json.loads((HERE / "lab03_pi5.json").read_text())["records"]

# Built here (in the grader, before any student process starts) so that the zoo cache holds them:
# student processes can read the cache but not write it.
DIGITS = str(edgekit.zoo.path("digits-cnn"))
MOBILENET = str(edgekit.zoo.path("mobilenetv2-224"))
RESNET = str(edgekit.zoo.path("resnet18-224"))
MODELS = {"digits-cnn": DIGITS, "mobilenetv2-224": MOBILENET, "resnet18-224": RESNET}


def zoo(name):
    return obj("edgekit.runtime.zoo:path", name)


def options(threads=1, level="ORT_ENABLE_ALL", spinning=None):
    """SessionOptions built in the student's process by the lab's support module, not by their answer."""
    return obj("lab03_support:session_options", threads, level, spinning)


def error_mentions(thunk, words):
    """Which of ``words`` the message of the error raised by ``thunk`` contains."""
    return [w for w in words if w in raised(thunk)[1]]


def near_reference(atol):
    """A small difference (<= 1e-3) that is also within ``atol`` of the reference's, computed on the same
    machine with the same kernels."""
    def compare(got, want):
        msg = within(0.0, 1e-3)(got, want)
        return msg or close(rtol=0, atol=atol)(got, want)
    return compare


def all_levels_difference(ns):
    """max_difference of digits-cnn over every level at 1 and 2 threads: not 0 on the reference."""
    return ns.max_difference(DIGITS, x_test, [ns.lab03_support.session_options(t, lv) for lv in LEVEL_NAMES
                                              for t in (1, 2)])


def pair(first):
    """Compare [an answer whose right value is degenerate (0), the all-levels difference]: the first with
    ``first``, the second with the reference's, so that a constant answer cannot pass."""
    def compare(got, want):
        if not isinstance(got, (list, tuple)) or len(got) != 2:
            return f"expected two differences, got {got!r:.80}"
        msg = first(got[0], want[0])
        if msg:
            return msg
        msg = near_reference(1e-6)(got[1], want[1])
        return msg and f"the difference over every level (asked too, so that a constant cannot pass): {msg}"
    return compare


# -- q1: SessionOptions ----------------------------------------------------------------------------
case("q1", "2 threads, basic, spinning off", call("options_summary", 2, "basic", spinning=False), equal(),
     public=True)
case("q1", "the defaults: 1 thread, all, spinning on", call("options_summary"), equal(), public=True)
for level in ("disable", "basic", "extended", "all"):
    case("q1", f"level {level!r}", lambda ns, lv=level: ns.make_options(3, lv).graph_optimization_level.name, equal())
case("q1", "intra_op_num_threads = 4", lambda ns: ns.make_options(4, "disable", True).intra_op_num_threads, equal())
case("q1", "spinning on is the string '1'",
     lambda ns: ns.make_options(2, "extended", True).get_session_config_entry("session.intra_op.allow_spinning"),
     equal())
case("q1", "spinning off is the string '0'",
     lambda ns: ns.make_options(1, "all", False).get_session_config_entry("session.intra_op.allow_spinning"),
     equal())
case("q1", "an unknown level raises ValueError", lambda ns: raised(lambda: ns.make_options(1, "fast"))[0], equal())
case("q1", "the ValueError lists the valid names",
     lambda ns: error_mentions(lambda: ns.make_options(1, "ORT_ENABLE_ALL"), ["disable", "basic", "extended", "all"]),
     equal(), weight=0.5)
case("q1", "a new SessionOptions on every call",
     lambda ns: [so.intra_op_num_threads for so in (ns.make_options(2), ns.make_options(1))], equal(), weight=0.5)

# -- q2: same outputs whatever the settings ----------------------------------------------------------
x_test = edgekit.datasets.digits("test")[0]
x_image = np.random.default_rng(3).standard_normal((1, 3, 224, 224)).astype(np.float32)
# level all (the only one whose kernels add in another order here) in the middle: every output counts
LEVEL_NAMES = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED")
all_levels = [options(t, lv) for lv in LEVEL_NAMES for t in (1, 2)]
case("q2", "digits-cnn, 8 images, 1 thread, no optimization",
     call("run_model", zoo("digits-cnn"), x_test[:8], options(1, "ORT_DISABLE_ALL")), close(rtol=1e-4, atol=1e-4),
     public=True)
case("q2", "digits-cnn, 64 images: levels disable, extended, all are within 1e-3 (and not a constant)",
     lambda ns: [ns.max_difference(DIGITS, x_test[:64], [ns.lab03_support.session_options(1, "ORT_DISABLE_ALL"),
                                                         ns.lab03_support.session_options(2, "ORT_ENABLE_EXTENDED"),
                                                         ns.lab03_support.session_options(1, "ORT_ENABLE_ALL")]),
                 all_levels_difference(ns)], pair(within(0.0, 1e-3)))
case("q2", "digits-cnn, the whole test split, 2 threads, level all",
     call("run_model", zoo("digits-cnn"), x_test, options(2, "ORT_ENABLE_ALL")), close(rtol=1e-4, atol=1e-4))
case("q2", "mobilenetv2-224, 2 threads, level extended",
     call("run_model", zoo("mobilenetv2-224"), x_image, options(2, "ORT_ENABLE_EXTENDED")), close(rtol=1e-4, atol=1e-5))
case("q2", "a model whose input is not called 'input'",
     call("run_model", obj("lab03_support:with_input_name", "digits-cnn", "pixels"), x_test[:5], options()),
     close(rtol=1e-4, atol=1e-4), weight=2)
case("q2", "digits-cnn, every level at 1 and 2 threads: the reference's difference",
     call("max_difference", zoo("digits-cnn"), x_test, all_levels), near_reference(1e-6), weight=2)
case("q2", "mobilenetv2-224, every level at 1 and 2 threads",
     call("max_difference", zoo("mobilenetv2-224"), x_image, all_levels), near_reference(1e-6))
case("q2", "threads only: exactly the same outputs (and not a constant)",
     lambda ns: [ns.max_difference(DIGITS, x_test, [ns.lab03_support.session_options(t, "ORT_ENABLE_EXTENDED")
                                                    for t in (1, 2, 3)]), all_levels_difference(ns)],
     pair(close(rtol=0, atol=1e-9)))
case("q2", "one setting: difference 0 (and not a constant)",
     lambda ns: [ns.max_difference(DIGITS, x_test[:3], [ns.lab03_support.session_options(2, "ORT_ENABLE_ALL")]),
                 all_levels_difference(ns)], pair(close(rtol=0, atol=1e-9)))

# -- q3: speed-up, efficiency, serial fraction --------------------------------------------------------


def by_threads(model, spin=True):
    return {r["threads"]: r["latency_ms"] for r in RECORDS if r["model"] == model and r["spin"] == spin}


def medians_speedups(samples):
    t1 = np.median(samples[1])
    threads = sorted(samples)
    return threads, [float(t1 / np.median(samples[n])) for n in threads]


exact = {1: [10.0], 2: [6.0], 4: [4.0]}
case("q3", "scaling: a small exact example", call("scaling", exact), close(rtol=1e-9), public=True)
case("q3", "karp_flatt(4, 2.5)", call("karp_flatt", 4, 2.5), close(rtol=1e-9), public=True)
case("q3", "serial fraction of an exact Amdahl curve", call("serial_fraction", [1, 2, 4], [1.0, 5 / 3, 2.5]),
     close(rtol=1e-9), public=True)
for model in ("mobilenetv2-224", "resnet18-224", "digits-cnn"):
    case("q3", f"scaling: Pi 5 {model}, spinning on", call("scaling", by_threads(model)), close(rtol=1e-9))
case("q3", "scaling: Pi 5 mobilenetv2-224, spinning off", call("scaling", by_threads("mobilenetv2-224", False)),
     close(rtol=1e-9))
unsorted = {4: [5.0, 5.2, 4.9], 1: [16.0, 15.0, 17.5, 16.2], 2: [9.0, 8.8, 30.0]}
case("q3", "scaling: keys not in order, medians not means", call("scaling", unsorted), close(rtol=1e-9), weight=2)
for n, s in ((2, 1.762), (3, 2.318), (8, 3.1), (2, 0.586)):
    case("q3", f"karp_flatt({n}, {s})", call("karp_flatt", n, s), close(rtol=1e-9))
for model in ("mobilenetv2-224", "resnet18-224", "digits-cnn"):
    threads, speedups = medians_speedups(by_threads(model))
    case("q3", f"serial fraction: Pi 5 {model}", call("serial_fraction", threads, speedups), close(rtol=1e-9))
ns_ = np.array([2, 4, 8, 16])
case("q3", "serial fraction without the 1-thread point",
     call("serial_fraction", [2, 4, 8, 16], [float(v) for v in 1 / (0.1 + 0.9 / ns_)]), close(rtol=1e-9))
case("q3", "least squares, not the mean of the Karp-Flatt values",
     call("serial_fraction", [1, 2, 3, 4], [1.0, 1.8, 2.3, 2.5]), close(rtol=1e-9), weight=2)

# -- q4: the cheapest configuration that meets a budget ----------------------------------------------


def records_of(model):
    return [r for r in RECORDS if r["model"] == model]


mnv2, resnet, digits = records_of("mobilenetv2-224"), records_of("resnet18-224"), records_of("digits-cnn")
case("q4", "mobilenetv2-224, 16 ms", call("best_config", mnv2, 16.0), equal(), public=True)
for recs, name, budgets in ((mnv2, "mobilenetv2-224", (33.3, 12.0, 11.0)), (resnet, "resnet18-224", (100.0, 40.0, 30.0)),
                            (digits, "digits-cnn", (1.0, 0.05))):
    for b in budgets:
        case("q4", f"{name}, {b} ms", call("best_config", recs, b), equal())
case("q4", "mobilenetv2-224, 9 ms: nothing fits, None (and 12 ms: something does)",
     lambda ns: [ns.best_config(mnv2, 9.0), ns.best_config(mnv2, 12.0)], equal(), weight=2)
case("q4", "p90, not the median: mobilenetv2-224 at 27.5 ms", call("best_config", mnv2, 27.5), equal(), weight=2)
case("q4", "all models at once, 20 ms", call("best_config", RECORDS, 20.0), equal())


def rec(threads, spin, latency, cpu):
    return {"model": "toy", "threads": threads, "spin": spin, "latency_ms": latency, "cpu_ms": cpu}


ten = [float(v) for v in range(1, 11)]  # p90 = 9.1 (linear interpolation)
p90 = float(np.percentile(ten, 90))
ties = [rec(2, True, ten, [5.0, 5.0, 6.0]), rec(2, False, ten, [5.0, 5.0, 7.0]), rec(4, False, ten, [5.0, 4.0, 9.0])]
case("q4", "a tie on the median CPU time: spinning off first", call("best_config", ties[:2], 20.0), equal())
case("q4", "a tie on the median CPU time: fewer threads first", call("best_config", ties[1:], 20.0), equal())
case("q4", "a p90 exactly equal to the budget meets it", call("best_config", [rec(3, True, ten, [1.0])], p90), equal())
case("q4", "just below the p90 does not (and at the p90 it does)",
     lambda ns: [ns.best_config([rec(3, True, ten, [1.0])], b) for b in (p90 - 1e-9, p90)], equal())

# -- q5: op histograms before and after optimization --------------------------------------------------
case("q5", "op histogram of digits-cnn", call("op_histogram", zoo("digits-cnn")), equal(), public=True)
case("q5", "digits-cnn optimized at level extended", call("optimized_histogram", zoo("digits-cnn"), "extended"),
     equal(), public=True)
case("q5", "op histogram of mobilenetv2-224", call("op_histogram", zoo("mobilenetv2-224")), equal())
case("q5", "op histogram of resnet18-224", call("op_histogram", zoo("resnet18-224")), equal())
case("q5", "conv-bn at level basic: Identity removed, BatchNormalization folded",
     call("optimized_histogram", obj("lab03_support:with_batchnorm", "q5-bn.onnx"), "basic"), equal(), weight=2)
for level in ("disable", "extended", "all"):
    case("q5", f"conv-bn at level {level}",
         call("optimized_histogram", obj("lab03_support:with_batchnorm", f"q5-bn-{level}.onnx"), level), equal())
for level in ("disable", "basic", "extended", "all"):
    case("q5", f"mobilenetv2-224 at level {level}", call("optimized_histogram", zoo("mobilenetv2-224"), level), equal())
case("q5", "digits-cnn at level all", call("optimized_histogram", zoo("digits-cnn"), "all"), equal())
case("q5", "resnet18-224 at level extended", call("optimized_histogram", zoo("resnet18-224"), "extended"), equal())


def never_more_nodes(ns):
    """For every model and level: nodes after optimization <= nodes in the file (a list of booleans)."""
    out = []
    for path in MODELS.values():
        before = sum(ns.op_histogram(path).values())
        # 0 < after: an empty histogram has no more nodes either, but it is not the graph ORT runs
        out += [0 < sum(ns.optimized_histogram(path, lv).values()) <= before for lv in ("basic", "extended", "all")]
    return out


case("q5", "the optimized graph never has more nodes than the original", never_more_nodes, equal())
