"""Support code for Lab 6 (quantization with ONNX Runtime). Nothing to edit.

    ListReader(feeds)      a CalibrationDataReader that hands out a given list of feeds, once each
    temp_path(name)        a path for a new file ``name`` in a new temporary folder
    file_bytes(path)       the bytes of a file (the grader measures your quantized models from these)
    mlp(path=None)         a small multi-layer perceptron (Gemm, Relu); each builder writes its model to
                           path (default: a new temporary folder) and returns the path
    lstm()                 a one-layer LSTM over a sequence, with a Gemm on its last output
    attention()            one self-attention head (MatMul, Softmax)
    normalise()            a pre-processing graph: uint8 HWC image -> float NCHW (Cast, Transpose, Sub, Div)
    conv1d()               a 1-D convolution network for audio-like signals (Conv over one axis)

The lab's quantized copies of digits-cnn (``lab06_models/``) were made from the zoo's digits-cnn with
ONNX Runtime 1.32: ``quant_pre_process``, then ``quantize_static`` (QDQ or QOperator, uint8
activations, int8 weights, MinMax calibration on the train split of the digits), ``quantize_dynamic``
(uint8 weights: onnxruntime 1.23 has no ConvInteger kernel for int8 weights), and
``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``.

>>> reader = ListReader([{"input": 1}, {"input": 2}])
>>> reader.get_next(), reader.get_next(), reader.get_next()
({'input': 1}, {'input': 2}, None)
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

try:  # a CalibrationDataReader when onnxruntime is there (it always is in this course)
    from onnxruntime.quantization import CalibrationDataReader as _Base
except ImportError:  # pragma: no cover
    _Base = object


class ListReader(_Base):
    """A CalibrationDataReader over a list of feeds (dicts {input name: array}), in order, once each."""

    def __init__(self, feeds):
        self.feeds = list(feeds)
        self.i = 0

    def get_next(self):
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return self.feeds[self.i - 1]

    def rewind(self):
        self.i = 0


def temp_path(name: str) -> str:
    """A path for the file ``name`` in a new temporary folder (nothing is written yet)."""
    return os.path.join(tempfile.mkdtemp(prefix="lab06-"), name)


def file_bytes(path) -> bytes:
    """The bytes of the file at ``path``: the grader measures accuracy, size and contents from them."""
    with open(path, "rb") as f:
        return f.read()


def _save(nodes, inputs, outputs, inits, path, stem, opset=17):
    """Check and save the model to ``path`` (default: ``<stem>.onnx`` in a new temporary folder)."""
    path = path if path is not None else temp_path(stem + ".onnx")
    graph = helper.make_graph(nodes, stem, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _w(rng, *shape, scale=0.1, name):
    return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)


def mlp(path: str | None = None, sizes=(64, 128, 10), seed: int = 0) -> str:
    """input[batch, 64] -> Gemm -> Relu -> Gemm -> output[batch, 10]."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "input"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        inits += [_w(rng, b, a, name=f"fc{i}.w"), _w(rng, b, name=f"fc{i}.b")]
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.w", f"fc{i}.b"], [f"fc{i}"], transB=1, name=f"fc{i}"))
        x = f"fc{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [x + ".relu"], name=f"relu{i}"))
            x += ".relu"
    nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", sizes[-1]])], inits, path, "mlp")


def lstm(path: str | None = None, features: int = 16, hidden: int = 32, classes: int = 5, seed: int = 0) -> str:
    """input[seq, batch, 16] -> LSTM(32) -> last step -> Gemm -> output[batch, 5]."""
    rng = np.random.default_rng(seed)
    inits = [_w(rng, 1, 4 * hidden, features, name="lstm.W"), _w(rng, 1, 4 * hidden, hidden, name="lstm.R"),
             _w(rng, 1, 8 * hidden, name="lstm.B"), _w(rng, classes, hidden, name="fc.w"), _w(rng, classes, name="fc.b")]
    nodes = [helper.make_node("LSTM", ["input", "lstm.W", "lstm.R", "lstm.B"], ["", "h_last"], hidden_size=hidden,
                              name="lstm"),
             helper.make_node("Squeeze", ["h_last", "axis0"], ["h"], name="squeeze"),
             helper.make_node("Gemm", ["h", "fc.w", "fc.b"], ["output"], transB=1, name="fc")]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axis0"))
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["seq", "batch", features])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])], inits, path, "lstm")


def attention(path: str | None = None, dim: int = 32, seed: int = 0) -> str:
    """One self-attention head: softmax(x Wq (x Wk)^T / sqrt(d)) x Wv, for input[tokens, 32]."""
    rng = np.random.default_rng(seed)
    inits = [_w(rng, dim, dim, name=f"W{k}") for k in "qkv"]
    inits.append(numpy_helper.from_array(np.array(np.sqrt(dim), np.float32), "sqrt_d"))
    nodes = [helper.make_node("MatMul", ["input", f"W{k}"], [k], name=f"proj_{k}") for k in "qkv"]
    nodes += [helper.make_node("Transpose", ["k"], ["kT"], perm=[1, 0], name="transpose"),
              helper.make_node("MatMul", ["q", "kT"], ["scores"], name="scores"),
              helper.make_node("Div", ["scores", "sqrt_d"], ["scaled"], name="scale"),
              helper.make_node("Softmax", ["scaled"], ["weights"], axis=-1, name="softmax"),
              helper.make_node("MatMul", ["weights", "v"], ["output"], name="mix")]
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["tokens", dim])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["tokens", dim])], inits, path, "attention")


def normalise(path: str | None = None) -> str:
    """uint8 image[224, 224, 3] -> float32 [1, 3, 224, 224], minus the ImageNet mean, divided by its std."""
    inits = [numpy_helper.from_array(np.array([123.675, 116.28, 103.53], np.float32).reshape(1, 3, 1, 1), "mean"),
             numpy_helper.from_array(np.array([58.395, 57.12, 57.375], np.float32).reshape(1, 3, 1, 1), "std"),
             numpy_helper.from_array(np.array([1, 224, 224, 3], np.int64), "shape")]
    nodes = [helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Reshape", ["f", "shape"], ["nhwc"], name="batch"),
             helper.make_node("Transpose", ["nhwc"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
             helper.make_node("Sub", ["nchw", "mean"], ["centred"], name="sub_mean"),
             helper.make_node("Div", ["centred", "std"], ["output"], name="div_std")]
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.UINT8, [224, 224, 3])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 224, 224])], inits, path, "normalise")


def conv1d(path: str | None = None, channels: int = 16, seed: int = 0) -> str:
    """input[batch, 1, 1600] (0.1 s of 16 kHz audio) -> Conv1d -> Relu -> Conv1d -> Relu -> mean -> Gemm -> 4 classes."""
    rng = np.random.default_rng(seed)
    inits = [_w(rng, channels, 1, 9, name="c1.w"), _w(rng, channels, name="c1.b"),
             _w(rng, channels, channels, 9, name="c2.w"), _w(rng, channels, name="c2.b"),
             _w(rng, 4, channels, name="fc.w"), _w(rng, 4, name="fc.b")]
    nodes = [helper.make_node("Conv", ["input", "c1.w", "c1.b"], ["c1"], strides=[4], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "c2.w", "c2.b"], ["c2"], strides=[4], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["pooled"], name="pool"),
             helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["output"], transB=1, name="fc")]
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 1600])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])], inits, path, "conv1d")
