"""Build MobileNetV2- or ResNet-18-shaped ONNX graphs with random weights, using only onnx.helper.

What: the exact layer shapes of the two classic ImageNet CNNs (input ``[batch, 3, 224, 224]``,
output ``logits [batch, 1000]``), with weights drawn from ``numpy.random.default_rng(0)``.
BatchNorm is left out (at inference it folds into the conv's bias anyway), so every layer is a
plain Conv with bias. Weights are He-scaled (std = sqrt(2 / fan_in) before a ReLU, sqrt(1 / fan_in)
before none), so activations stay finite through the whole network.

Why: these models are for latency labs only. Their predictions are meaningless, but their cost is
that of the real networks: same operators, shapes, FLOPs and parameter counts (MobileNetV2 3.49 M,
ResNet-18 11.68 M). Building them takes seconds, needs no torch and no download, and the bytes
depend only on the onnx and numpy versions.

    python models/build/synthetic.py --arch mobilenetv2 --out ~/.cache/edgekit/mobilenetv2-224.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # the build-script contract: exit 3 with the pip command
    print(f"{exc.name} is not installed: pip install onnx numpy", file=sys.stderr)
    sys.exit(3)

OPSET, IR_VERSION = 17, 8  # pinned so the file loads on older ONNX Runtime releases too


class Graph:
    """Collects nodes and weights; each method adds layers and returns the output's name."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.weights: list = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _weight(self, name: str, shape: tuple, fan_in: int, gain: float):
        std = np.sqrt(gain / fan_in)  # He et al. 2015: keeps activation variance ~constant
        w = (self.rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)
        self.weights.append(numpy_helper.from_array(w, name))

    def conv(self, x, cin, cout, k, stride=1, groups=1, act="relu"):
        """k x k convolution with 'same' padding, plus bias and an activation (or none)."""
        name = self._name("conv")
        self._weight(name + ".w", (cout, cin // groups, k, k), (cin // groups) * k * k,
                     gain=2.0 if act else 1.0)
        self.weights.append(numpy_helper.from_array(np.zeros(cout, np.float32), name + ".b"))
        pad = k // 2
        self.nodes.append(helper.make_node(
            "Conv", [x, name + ".w", name + ".b"], [name], name=name, kernel_shape=[k, k],
            strides=[stride, stride], pads=[pad] * 4, group=groups))
        if act == "relu":
            self.nodes.append(helper.make_node("Relu", [name], [name + ".relu"]))
            return name + ".relu"
        if act == "relu6":  # ReLU6 = Clip(x, 0, 6): what MobileNets use, friendly to int8
            if not any(w.name == "relu6_min" for w in self.weights):
                # one shared pair of bounds (Clip takes min/max as inputs since opset 11)
                self.weights += [numpy_helper.from_array(np.array(v, np.float32), n)
                                 for v, n in ((0.0, "relu6_min"), (6.0, "relu6_max"))]
            self.nodes.append(helper.make_node("Clip", [name, "relu6_min", "relu6_max"],
                                               [name + ".relu6"]))
            return name + ".relu6"
        return name

    def add(self, a: str, b: str, relu: bool = False) -> str:
        name = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [name], name=name))
        if relu:
            self.nodes.append(helper.make_node("Relu", [name], [name + ".relu"]))
            return name + ".relu"
        return name

    def head(self, x: str, cin: int, classes: int = 1000) -> str:
        """Global average pool -> flatten -> fully connected layer to ``logits``."""
        self.nodes += [helper.make_node("GlobalAveragePool", [x], ["pool"]),
                       helper.make_node("Flatten", ["pool"], ["features"], axis=1)]
        self._weight("fc.w", (classes, cin), cin, gain=1.0)
        self.weights.append(numpy_helper.from_array(np.zeros(classes, np.float32), "fc.b"))
        self.nodes.append(helper.make_node("Gemm", ["features", "fc.w", "fc.b"], ["logits"],
                                           transB=1))  # fc.w is (out, in), as in torch
        return "logits"


def mobilenetv2(g: Graph) -> None:
    """Sandler et al. 2018, width 1.0: inverted residuals with a linear bottleneck."""
    x, cin = g.conv("input", 3, 32, 3, stride=2, act="relu6"), 32
    # (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride, hidden = (s if i == 0 else 1), cin * t
            y = x if t == 1 else g.conv(x, cin, hidden, 1, act="relu6")  # 1x1 expand
            y = g.conv(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")  # depthwise
            y = g.conv(y, hidden, c, 1, act=None)  # 1x1 project, linear (no activation)
            x = g.add(x, y) if stride == 1 and cin == c else y  # residual when shapes match
            cin = c
    g.head(g.conv(x, 320, 1280, 1, act="relu6"), 1280)


def resnet18(g: Graph) -> None:
    """He et al. 2016: basic blocks of two 3x3 convs, [2, 2, 2, 2] blocks per stage."""
    x = g.conv("input", 3, 64, 7, stride=2)
    g.nodes.append(helper.make_node("MaxPool", [x], ["maxpool"], kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "maxpool", 64
    for stage, c in enumerate([64, 128, 256, 512]):
        for i in range(2):
            stride = 2 if stage > 0 and i == 0 else 1
            y = g.conv(x, cin, c, 3, stride)
            y = g.conv(y, c, c, 3, act=None)  # the ReLU comes after the residual add
            # a 1x1 strided conv matches the shortcut's shape when the block downsamples
            shortcut = g.conv(x, cin, c, 1, stride, act=None) if stride != 1 or cin != c else x
            x, cin = g.add(shortcut, y, relu=True), c
    g.head(x, 512)


def build(arch: str) -> onnx.ModelProto:
    g = Graph(seed=0)
    {"mobilenetv2": mobilenetv2, "resnet18": resnet18}[arch](g)
    graph = helper.make_graph(
        g.nodes, f"{arch}-224-synthetic",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        initializer=g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="edgekit synthetic.py",
                              doc_string="constant random weights (default_rng(0)): latency only")
    onnx.checker.check_model(model, full_check=True)  # full_check also runs shape inference
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=["mobilenetv2", "resnet18"])
    parser.add_argument("--out", required=True, type=Path, help="where to write the .onnx file")
    args = parser.parse_args()

    start = time.perf_counter()
    model = build(args.arch)
    data = model.SerializeToString()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.dims)  # not scalars
    print(json.dumps({
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "params": params,
        "seconds": round(time.perf_counter() - start, 2),
    }))


if __name__ == "__main__":
    main()
