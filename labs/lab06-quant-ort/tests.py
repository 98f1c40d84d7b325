"""Tests of Lab 6 (quantization with ONNX Runtime). Nothing depends on the speed of the machine: readers
are judged by what they hand out, quantized models by their files (operators, dtypes, size) and their
accuracy within bounds, calibration by the ranges it returns, compared with the reference's.

Every model a student's function writes goes to the current folder (the grader's scratch folder, the
only writable one) or to a temporary folder: never next to the zoo's models."""

import numpy as np

import edgekit
from edgekit.grading import call, case, close, equal, obj, ref, within

# Built and evaluated here, in the grader, before any student process starts.
DIGITS = str(edgekit.zoo.path("digits-cnn"))
edgekit.zoo.path("mobilenetv2-224")  # the zoo cache is read-only for student processes: build it now
x_train, _ = edgekit.datasets.digits("train")
x_test, y_test = edgekit.datasets.digits("test")


def _fp32_accuracy():
    import onnxruntime as ort

    session = ort.InferenceSession(DIGITS, providers=["CPUExecutionProvider"])
    return float((session.run(None, {"input": x_test})[0].argmax(1) == y_test).mean())


FP32 = _fp32_accuracy()
ACCURACY = within(FP32 - 0.02, 1.0)  # at most 2 points below float32 (364 test images: 7 more mistakes)


def zoo(name):
    return obj("edgekit.zoo:path", name)


def drain(reader, limit=5000):
    """Every feed a reader hands out (stops at None, or after ``limit`` feeds)."""
    get, feeds = reader.get_next, []
    for _ in range(limit):
        feed = get()
        if feed is None:
            break
        feeds.append(feed)
    return feeds


def dict_close(rtol=1e-6, atol=1e-6):
    return close(rtol=rtol, atol=atol)  # close() compares dicts key by key


# -- q1: the calibration data reader -----------------------------------------------------------------
small = x_train[:100]
case("q1", "1,433 training images in batches of 32", call("reader_summary", ref("x_train"), 32), equal(),
     public=True)
case("q1", "batches of 50, input named 'pixels'", call("reader_summary", ref("x_train"), 50, input_name="pixels"),
     equal())
case("q1", "the batches, in order (100 images, batches of 8)", lambda ns: drain(ns.DigitsReader(small, 8)), equal(),
     weight=2)
case("q1", "the dtype is float32, also for float64 images",
     lambda ns: sorted({str(f["input"].dtype) for f in drain(ns.DigitsReader(small.astype(np.float64), 16))}), equal())
case("q1", "fewer images than one batch: no batch at all", lambda ns: len(drain(ns.DigitsReader(small[:5], 8))),
     equal())
case("q1", "batch size 1", lambda ns: len(drain(ns.DigitsReader(small[:37], 1))), equal())


def after_the_end(ns):
    reader = ns.DigitsReader(small[:20], 8)
    drain(reader)
    return [reader.get_next(), reader.get_next()]


def rewound(ns):
    reader = ns.DigitsReader(small[:24], 8)
    first = drain(reader)
    reader.rewind()
    return [len(first), drain(reader)]


case("q1", "None again after the end", after_the_end, equal())
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
case("q3", "accuracy of your static int8 digits-cnn (defaults)", call("int8_accuracy"), ACCURACY,
     public=True)
case("q3", "its size: between 0.2 and 0.45 of float32", call("int8_size_ratio"), within(0.2, 0.45),
     public=True)
case("q3", "per tensor: accuracy", call("int8_accuracy", "q3-per-tensor.onnx", per_channel=False), ACCURACY)
case("q3", "entropy calibration: accuracy", call("int8_accuracy", "q3-entropy.onnx", method="entropy"), ACCURACY)
case("q3", "percentile calibration: accuracy", call("int8_accuracy", "q3-percentile.onnx", method="percentile"),
     ACCURACY)
case("q3", "entropy with batches of 50 (1,433 = 28 x 50 + 33: the reader drops the tail)",
     call("int8_accuracy", "q3-entropy-50.onnx", method="entropy", batch_size=50), ACCURACY, weight=2)
case("q3", "QDQ format: the operators in the file",
     lambda ns: ns.int8_model_info("q3-info.onnx")["ops"], equal(), weight=2)
case("q3", "uint8 activations and int8 weights: the dtypes in the file",
     lambda ns: ns.int8_model_info("q3-dtypes.onnx")["dtypes"], equal())
case("q3", "per channel: one scale per output channel",
     lambda ns: ns.int8_model_info("q3-pc.onnx")["weight_scales"], equal())
case("q3", "per tensor: one scale per weight",
     lambda ns: ns.int8_model_info("q3-pt.onnx", per_channel=False)["weight_scales"], equal())
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
         call("activation_ranges", zoo("digits-cnn"), reader(feeds), method), dict_close(), weight=1.5)
case("q4", "the default method is MinMax", call("activation_ranges", zoo("digits-cnn"), reader(feeds[:4])), dict_close())
for method in ("minmax", "percentile"):
    case("q4", f"{method}: a perceptron with one outlier in its input",
         call("activation_ranges", obj("lab06_support:mlp"), reader(mlp_feeds), method),
         dict_close())
case("q4", "the tensor names", lambda ns: sorted(ns.activation_ranges(DIGITS, ns.lab06_support.ListReader(feeds[:2]))),
     equal())
case("q4", "lo <= hi for every tensor",
     lambda ns: all(lo <= hi for lo, hi in ns.activation_ranges(DIGITS, ns.lab06_support.ListReader(feeds[:2]),
                                                                "entropy").values()), equal(), weight=0.5)

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
