"""Support code for Lab 7 (pruning and efficient architectures): small ONNX models built with
onnx.helper, to count and time. Nothing to edit.

    inverted_residual(...)   one MobileNetV2 block (1x1 expand, 3x3 depthwise, 1x1 project)
    standard_block(...)      the same block with a standard 3x3 convolution instead
    mlp(...)                 a small multi-layer perceptron made of Gemm nodes
"""

from __future__ import annotations

import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(model: onnx.ModelProto, path: str | None, stem: str) -> str:
    onnx.checker.check_model(model)
    if path is None:
        with tempfile.NamedTemporaryFile(suffix=".onnx", prefix=stem + "-", delete=False) as f:
            path = f.name
    onnx.save(model, path)
    return str(path)


def _conv(nodes, inits, rng, x, c_in, c_out, k, stride=1, group=1, relu6=True, name="conv"):
    w = (rng.normal(size=(c_out, c_in // group, k, k)) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"{name}.w"), numpy_helper.from_array(np.zeros(c_out, np.float32), f"{name}.b")]
    nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name], name=name, kernel_shape=[k, k],
                                  strides=[stride, stride], pads=[k // 2] * 4, group=group))
    if not relu6:
        return name
    nodes.append(helper.make_node("Clip", [name, "zero", "six"], [name + ".relu6"], name=name + ".relu6"))
    return name + ".relu6"


def _block(c_in, expand, c_out, hw, stride, depthwise, seed):
    rng = np.random.default_rng(seed)
    nodes, inits = [], [numpy_helper.from_array(np.array(0, np.float32), "zero"),
                        numpy_helper.from_array(np.array(6, np.float32), "six")]
    hidden = c_in * expand
    h = _conv(nodes, inits, rng, "input", c_in, hidden, 1, name="expand")
    h = _conv(nodes, inits, rng, h, hidden, hidden, 3, stride, group=hidden if depthwise else 1,
              name="depthwise" if depthwise else "conv3x3")
    out = _conv(nodes, inits, rng, h, hidden, c_out, 1, relu6=False, name="project")
    if stride == 1 and c_in == c_out:  # the residual connection of MobileNetV2
        nodes.append(helper.make_node("Add", ["input", out], ["output"], name="residual"))
    else:
        nodes.append(helper.make_node("Identity", [out], ["output"], name="output"))
    hw_out = (hw + 2 - 3) // stride + 1  # a 3x3 convolution with padding 1
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c_in, hw, hw])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, c_out, hw_out, hw_out])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def inverted_residual(c_in: int = 32, expand: int = 6, c_out: int = 32, hw: int = 56, stride: int = 1,
                      path: str | None = None, seed: int = 0) -> str:
    """Write one MobileNetV2 inverted-residual block as an ONNX file and return its path.

    1x1 conv c_in -> c_in*expand (+ReLU6), 3x3 depthwise conv with ``stride`` (+ReLU6),
    1x1 conv -> c_out, and the residual Add when the shapes allow it. Input ``[1, c_in, hw, hw]``;
    random weights.
    """
    return _save(_block(c_in, expand, c_out, hw, stride, True, seed), path, "inverted-residual")


def standard_block(c_in: int = 32, expand: int = 6, c_out: int = 32, hw: int = 56, stride: int = 1,
                   path: str | None = None, seed: int = 0) -> str:
    """The same block as :func:`inverted_residual` with a standard (group=1) 3x3 convolution."""
    return _save(_block(c_in, expand, c_out, hw, stride, False, seed), path, "standard-block")


def mlp(sizes=(64, 32, 10), trans_b: bool = False, path: str | None = None, seed: int = 0) -> str:
    """Write a multi-layer perceptron of Gemm (+Relu) nodes with a symbolic batch size; return its path.

    ``trans_b=False`` stores each weight as ``[in, out]`` (Gemm's default), ``True`` as ``[out, in]``
    (what PyTorch exports)."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "input"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.normal(size=(n_out, n_in) if trans_b else (n_in, n_out)) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"fc{i}.w"), numpy_helper.from_array(np.zeros(n_out, np.float32), f"fc{i}.b")]
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.w", f"fc{i}.b"], [f"fc{i}"], name=f"fc{i}", transB=int(trans_b)))
        x = f"fc{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [x + ".relu"], name=x + ".relu"))
            x += ".relu"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", sizes[-1]])], inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path, "mlp")
