"""Support code for Lab 3 (threads, graph optimizations, execution providers). Nothing to edit.

    session_options(...)      an onnxruntime.SessionOptions with the given fields (the tests use it)
    with_input_name(...)      a copy of a zoo model whose input has another name
    with_batchnorm(...)       a small Conv -> BatchNormalization -> Identity -> Relu model

>>> so = session_options(threads=2, level="ORT_DISABLE_ALL")
>>> so.intra_op_num_threads, so.graph_optimization_level.name
(2, 'ORT_DISABLE_ALL')
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def session_options(threads: int = 1, level: str = "ORT_ENABLE_ALL", spinning: bool | None = None) -> ort.SessionOptions:
    """SessionOptions with ``intra_op_num_threads``, ``graph_optimization_level`` given by ONNX Runtime's
    own name (e.g. ``"ORT_ENABLE_EXTENDED"``) and, unless None, the intra-op spinning entry."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3  # errors only
    return so


def with_input_name(model: str = "digits-cnn", name: str = "pixels", path: str | None = None) -> str:
    """Save a copy of zoo ``model`` whose input is called ``name`` (default file: ``<model>-<name>.onnx``
    in the current folder) and return its path."""
    import edgekit

    proto = onnx.load(str(edgekit.zoo.path(model)))
    old = proto.graph.input[0].name
    proto.graph.input[0].name = name
    for node in proto.graph.node:
        node.input[:] = [name if i == old else i for i in node.input]
    path = path or f"{model}-{name}.onnx"
    onnx.save(proto, path)
    return path


def with_batchnorm(path: str = "conv-bn.onnx", seed: int = 0) -> str:
    """Save a model ``input[1,3,16,16] -> Conv -> BatchNormalization -> Identity -> Relu -> output``
    with random weights (what a training framework often exports) and return its path."""
    rng = np.random.default_rng(seed)
    c = 8
    inits = [numpy_helper.from_array((rng.normal(size=(c, 3, 3, 3)) * 0.2).astype(np.float32), "conv.w"),
             numpy_helper.from_array(rng.normal(size=c).astype(np.float32), "bn.scale"),
             numpy_helper.from_array(rng.normal(size=c).astype(np.float32), "bn.bias"),
             numpy_helper.from_array(rng.normal(size=c).astype(np.float32), "bn.mean"),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, size=c).astype(np.float32), "bn.var")]
    nodes = [helper.make_node("Conv", ["input", "conv.w"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["conv", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn"],
                              name="bn"),
             helper.make_node("Identity", ["bn"], ["same"], name="identity"),
             helper.make_node("Relu", ["same"], ["output"], name="relu")]
    graph = helper.make_graph(nodes, "conv-bn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, c, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
