"""Tests of Lab 6 (quantization with ONNX Runtime). Nothing depends on the speed of the machine: readers
are judged by what they hand out, quantized models by their files (operators, dtypes, size) and their
accuracy within bounds, calibration by the ranges it returns, compared with the reference's.

Hidden verdicts never rest on a number the student's process computes with a notebook helper: the
grader takes the feeds a student's reader hands out and the bytes of the model file their
``static_int8`` wrote, and measures accuracy, size and contents here, with the code below.

Every model a student's function writes goes to the current folder (the grader's scratch folder, the
only writable one) or to a temporary folder: never next to the zoo's models."""

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import edgekit
from edgekit.grading import call, case, close, equal, load_lab, obj, ref, within
from edgekit.grading.fenced import fenced_call, plain_model

MAX_MODEL_BYTES = 2_000_000  # digits-cnn is 87 kB: anything far bigger is not a quantized digits-cnn

# Built and evaluated here, in the grader, before any student process starts.
LIMITS = load_lab(Path(__file__).parent).limits
DIGITS = str(edgekit.zoo.path("digits-cnn"))
edgekit.zoo.path("mobilenetv2-224")  # the zoo cache is read-only for student processes: build it now
x_train, _ = edgekit.datasets.digits("train")
x_test, y_test = edgekit.datasets.digits("test")


FP32_BYTES = Path(DIGITS).stat().st_size


def model_from(data) -> onnx.ModelProto:
    """A model from the bytes of a student's file, refused unless it is a plain, small, self-contained
    ONNX graph (edgekit.grading.fenced.plain_model)."""
    return plain_model(data, MAX_MODEL_BYTES)


def _accuracy(model: bytes) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # CPU time then tracks wall time: the fence's CPU limit means what it says
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return float((session.run(None, {session.get_inputs()[0].name: x_test})[0].argmax(1) == y_test).mean())


def accuracy_of(data) -> float:
    """Top-1 accuracy on the digits test split of the model in ``data`` (bytes), measured by the grader —
    in a fenced child process with the lab's call_s and memory limits, never in the judge itself."""
    return fenced_call(_accuracy, model_from(data).SerializeToString(), wall_s=LIMITS.call_s,
                       memory_mb=LIMITS.memory_mb)


def int8(data) -> bytes:
    """``data``, if it is a quantized model: a copy of the float32 model is as accurate as float32, and a
    few bytes of anything are small."""
    if "QuantizeLinear" not in {n.op_type for n in model_from(data).graph.node}:
        raise ValueError("the file has no QuantizeLinear node: it is not a static int8 (QDQ) model")
    return data


def info_of(data) -> dict:
    """What a file holds: its op histogram, the dtypes of its initializers, scales per weight."""
    model = model_from(data)
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {"ops": dict(Counter(n.op_type for n in model.graph.node)),
            "dtypes": sorted({str(a.dtype) for a in arrays.values()}),
            "weight_scales": sorted(int(a.size) for name, a in arrays.items() if name.endswith("weight_scale"))}


def written(ns, out, **options) -> bytes:
    """Run the student's static_int8 on digits-cnn into ``out``; the bytes of the file at ``out``."""
    ns.static_int8(DIGITS, out, **options)
    return ns.lab06_support.file_bytes(out)


with open(DIGITS, "rb") as f:
    FP32 = accuracy_of(f.read())
ACCURACY = within(FP32 - 0.02, 1.0)  # at most 2 points below float32 (364 test images: 7 more mistakes)


def zoo(name):
    return obj("edgekit.runtime.zoo:path", name)


def drain(reader, limit=5000):
    """Every feed a reader hands out (stops at None, or after ``limit`` feeds)."""
    get, feeds = reader.get_next, []
    for _ in range(limit):
        feed = get()
        if feed is None:
            break
        feeds.append(feed)
    return feeds


def summary(feeds) -> dict:
    """What a reader handed out (a list of feeds), as plain data; the notebook's describe_reader, here."""
    values = [v for feed in feeds for v in feed.values()]
    return {"batches": len(feeds), "names": sorted({name for feed in feeds for name in feed}),
            "shapes": sorted({tuple(np.shape(v)) for v in values}),
            "dtypes": sorted({str(np.asarray(v).dtype) for v in values}),
            "pixel_sum_x16": int(round(16 * sum(float(np.sum(v, dtype=np.float64)) for v in values)))}


# -- q1: the calibration data reader -----------------------------------------------------------------
small = x_train[:100]
case("q1", "1,433 training images in batches of 32", call("reader_summary", ref("x_train"), 32), equal(dtype=True),
     public=True)
case("q1", "batches of 50, input named 'pixels'",
     lambda ns: summary(drain(ns.DigitsReader(x_train, 50, input_name="pixels"))), equal())
case("q1", "the batches, in order (100 images, batches of 8)", lambda ns: drain(ns.DigitsReader(small, 8)), equal(),
     weight=2)
case("q1", "the dtype is float32, also for float64 images",
     lambda ns: sorted({str(f["input"].dtype) for f in drain(ns.DigitsReader(small.astype(np.float64), 16))}), equal())
case("q1", "fewer images than one batch: no batch at all (and 16 images: two)",
     lambda ns: [len(drain(ns.DigitsReader(small[:n], 8))) for n in (5, 16)], equal())
case("q1", "batch size 1", lambda ns: len(drain(ns.DigitsReader(small[:37], 1))), equal())


def after_the_end(ns):
    reader = ns.DigitsReader(small[:20], 8)
    return [len(drain(reader)), reader.get_next(), reader.get_next()]


def rewound(ns):
    reader = ns.DigitsReader(small[:24], 8)
    first = drain(reader)
    reader.rewind()
    return [len(first), drain(reader)]


case("q1", "two batches, then None again after the end", after_the_end, equal())
case("q1", "rewind() starts again from the first batch", rewound, equal(), weight=2)

# -- q2: counting QDQ nodes and the size ratio ---------------------------------------------------------
case("q2", "QDQ counts of the QDQ model", call("qdq_counts", "lab06_models/digits-cnn.qdq.onnx"), equal(), public=True)
case("q2", "size ratio of the QDQ model", call("size_ratio", zoo("digits-cnn"), "lab06_models/digits-cnn.qdq.onnx"),
     close(rtol=1e-6), public=True)
for name in ("qdq-per-channel", "qoperator", "fp16"):
    case("q2", f"QDQ counts: {name}", call("qdq_counts", f"lab06_models/digits-cnn.{name}.onnx"), equal())
case("q2", "QDQ counts: dynamic (DynamicQuantizeLinear is not QuantizeLinear)",
     call("qdq_counts", "lab06_models/digits-cnn.dynamic.onnx"), equal(), weight=2)
case("q2", "QDQ counts: the float32 model", call("qdq_counts", zoo("digits-cnn")), equal())
for name in ("qdq-per-channel", "qoperator", "dynamic", "fp16"):
    case("q2", f"size ratio: {name}", call("size_ratio", zoo("digits-cnn"), f"lab06_models/digits-cnn.{name}.onnx"),
         close(rtol=1e-6))
case("q2", "size ratio the other way round",
     call("size_ratio", "lab06_models/digits-cnn.fp16.onnx", "lab06_models/digits-cnn.qdq.onnx"), close(rtol=1e-6))

# -- q3: static int8 digits-cnn ------------------------------------------------------------------------
case("q3", "your static int8 digits-cnn (defaults): accuracy and size within the budget", call("int8_budget"),
     equal(), public=True)
# hidden: measured here, from the bytes of the file static_int8 wrote
case("q3", "accuracy of the file, measured by the grader (defaults)",
     lambda ns: accuracy_of(int8(written(ns, "q3.onnx"))), ACCURACY)
case("q3", "size of the file: between 0.2 and 0.45 of float32",
     lambda ns: len(int8(written(ns, "q3-size.onnx"))) / FP32_BYTES, within(0.2, 0.45))
case("q3", "per tensor: accuracy",
     lambda ns: accuracy_of(int8(written(ns, "q3-per-tensor.onnx", per_channel=False))), ACCURACY)
case("q3", "entropy calibration: accuracy",
     lambda ns: accuracy_of(int8(written(ns, "q3-entropy.onnx", method="entropy"))), ACCURACY)
case("q3", "percentile calibration: accuracy",
     lambda ns: accuracy_of(int8(written(ns, "q3-percentile.onnx", method="percentile"))), ACCURACY)
case("q3", "entropy with batches of 50 (1,433 = 28 x 50 + 33: the reader drops the tail)",
     lambda ns: accuracy_of(int8(written(ns, "q3-entropy-50.onnx", method="entropy", batch_size=50))), ACCURACY,
     weight=2)
case("q3", "QDQ format: the operators in the file", lambda ns: info_of(written(ns, "q3-info.onnx"))["ops"], equal(),
     weight=2)
case("q3", "uint8 activations and int8 weights: the dtypes in the file",
     lambda ns: info_of(written(ns, "q3-dtypes.onnx"))["dtypes"], equal())
case("q3", "per channel: one scale per output channel",
     lambda ns: info_of(written(ns, "q3-pc.onnx"))["weight_scales"], equal())
case("q3", "per tensor: one scale per weight",
     lambda ns: info_of(written(ns, "q3-pt.onnx", per_channel=False))["weight_scales"], equal())
case("q3", "the written file is the one returned",
     lambda ns: ns.static_int8(DIGITS, "q3-returned.onnx").endswith("q3-returned.onnx"), equal(), weight=0.5)

# -- q4: calibration ranges ----------------------------------------------------------------------------
feeds = [{"input": x_train[i:i + 32]} for i in range(0, 1408, 32)]  # 44 full batches
rng = np.random.default_rng(6)
mlp_feeds = [{"input": rng.standard_normal((16, 64)).astype(np.float32)} for _ in range(8)]
mlp_feeds[3]["input"][0, 0] = 40.0  # one outlier: MinMax keeps it, Percentile clips it


def reader(feed_list):
    return obj("lab06_support:ListReader", feed_list)


case("q4", "MinMax ranges of digits-cnn on 64 images, as a table",
     call("ranges_table", zoo("digits-cnn"), reader([{"input": x_train[:64]}]), "minmax"), close(rtol=1e-5, atol=1e-6),
     public=True)
for method in ("minmax", "entropy", "percentile"):
    case("q4", f"{method}: digits-cnn on 1,408 training images",
         call("activation_ranges", zoo("digits-cnn"), reader(feeds), method), close(1e-6, 1e-6), weight=1.5)
case("q4", "the default method is MinMax", call("activation_ranges", zoo("digits-cnn"), reader(feeds[:4])), close(1e-6, 1e-6))
for method in ("minmax", "percentile"):
    case("q4", f"{method}: a perceptron with one outlier in its input",
         call("activation_ranges", obj("lab06_support:mlp"), reader(mlp_feeds), method),
         close(1e-6, 1e-6))
case("q4", "the tensor names", lambda ns: sorted(ns.activation_ranges(DIGITS, ns.lab06_support.ListReader(feeds[:2]))),
     equal())
case("q4", "lo <= hi for every tensor (sorted by name)",
     lambda ns: [bool(lo <= hi) for _, (lo, hi) in sorted(ns.activation_ranges(
         DIGITS, ns.lab06_support.ListReader(feeds[:2]), "entropy").items())], equal(), weight=0.5)

# -- q5: which method for which model --------------------------------------------------------------------
case("q5", "digits-cnn", call("pick_method", zoo("digits-cnn")), equal(), public=True)
case("q5", "an MLP", call("pick_method", obj("lab06_support:mlp")), equal(), public=True)
case("q5", "mobilenetv2-224", call("pick_method", zoo("mobilenetv2-224")), equal())
for name in ("lstm", "attention", "normalise", "conv1d"):
    case("q5", f"lab06_support.{name}()", call("pick_method", obj(f"lab06_support:{name}")), equal())
case("q5", "the float16 digits-cnn still has convolutions", call("pick_method", "lab06_models/digits-cnn.fp16.onnx"),
     equal())
case("q5", "the QDQ digits-cnn keeps its float Conv nodes", call("pick_method", "lab06_models/digits-cnn.qdq.onnx"),
     equal())
case("q5", "an already quantized QOperator model (QLinearConv, QGemm)",
     call("pick_method", "lab06_models/digits-cnn.qoperator.onnx"), equal())
case("q5", "an already quantized dynamic model (ConvInteger, MatMulInteger)",
     call("pick_method", "lab06_models/digits-cnn.dynamic.onnx"), equal())
