"""Lab 10 support: small example models, and the helpers the checks use to look at your results.

Every model is built here with ``onnx.helper`` from fixed seeds, so it is the same on every
machine; ``digits-cnn`` comes from the edgekit zoo. The ``*_after`` helpers run one of your
functions on a fresh copy of an example model and return plain data (shapes, op counts, numbers)
that the checks compare with the reference solution's.

>>> sorted(EXAMPLES)[:3]
['digits-cnn', 'erf-head', 'erf-mlp']
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # what torch.onnx.export wrote by default for years; Gelu needs 20
HERE = Path(__file__).parent


def load_reports() -> dict:
    """The placement reports recorded with ``edgekit npu-check`` (lab10_reports.json): ``{model: report}``."""
    # The working directory first (the notebook's folder in Jupyter and when checking or grading), then ours.
    for folder in (Path.cwd(), HERE):
        if (folder / "lab10_reports.json").is_file():
            return json.loads((folder / "lab10_reports.json").read_text())["reports"]
    raise FileNotFoundError(f"lab10_reports.json is neither in {Path.cwd()} nor next to lab10_support.py; "
                            "copy it from the course's notebooks/ folder")


def _weights(seed: int, *shapes) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) / np.sqrt(s[0])).astype(np.float32) for s in shapes]


def _model(nodes, inits: dict, inputs, outputs, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lab10_support")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _gelu(x: str, prefix: str, swap: bool = False) -> tuple[list, dict, str]:
    """The exact GELU as torch.onnx.export (opset < 20) writes it: x * (1 + Erf(x / sqrt(2))) * 0.5."""
    n = lambda op, ins, out, tag: helper.make_node(op, ins, [out], name=f"{prefix}/{tag}")  # noqa: E731
    c = {f"{prefix}.sqrt2": np.array(np.sqrt(2.0), np.float32), f"{prefix}.one": np.array(1.0, np.float32),
         f"{prefix}.half": np.array(0.5, np.float32)}
    d, e, p, m, y = (f"{prefix}/{t}_output_0" for t in ("Div", "Erf", "Add", "Mul", "Mul_1"))
    nodes = [n("Div", [x, f"{prefix}.sqrt2"], d, "Div"), n("Erf", [d], e, "Erf"),
             n("Add", [f"{prefix}.one", e] if swap else [e, f"{prefix}.one"], p, "Add"),
             n("Mul", [p, x] if swap else [x, p], m, "Mul"), n("Mul", [m, f"{prefix}.half"], y, "Mul_1")]
    return nodes, c, y


def _linear(x: str, w: np.ndarray, b: np.ndarray, prefix: str, out: str | None = None) -> tuple[list, dict, str]:
    mm, y = f"{prefix}/MatMul_output_0", out or f"{prefix}/Add_output_0"
    nodes = [helper.make_node("MatMul", [x, f"{prefix}.weight"], [mm], name=f"{prefix}/MatMul"),
             helper.make_node("Add", [mm, f"{prefix}.bias"], [y], name=f"{prefix}/Add")]
    return nodes, {f"{prefix}.weight": w, f"{prefix}.bias": b}, y


def _io(name: str, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def mlp_gelu(hidden_layers: int = 1, batch="batch", swap_second: bool = False) -> onnx.ModelProto:
    """A transformer-style MLP: Linear(16 -> 32), GELU, [Linear(32 -> 32), GELU,] Linear(32 -> 10)."""
    sizes = [16] + [32] * hidden_layers + [10]
    params = _weights(10 + hidden_layers, *[(a, b) for a, b in zip(sizes, sizes[1:])])
    nodes, inits, x = [], {}, "x"
    for i, w in enumerate(params):
        last = i == len(params) - 1
        ns, c, x = _linear(x, w, np.full(w.shape[1], 0.01 * (i + 1), np.float32), f"/fc{i + 1}",
                           "logits" if last else None)
        nodes += ns
        inits |= c
        if not last:
            ns, c, x = _gelu(x, f"/act{i + 1}", swap=swap_second and i == 1)
            nodes += ns
            inits |= c
    return _model(nodes, inits, [_io("x", [batch, 16])], [_io("logits", [batch, 10])], "mlp_gelu")


def gelu_on_input() -> onnx.ModelProto:
    """Only a GELU: its input is the graph input, its output the graph output."""
    nodes, c, y = _gelu("x", "/act")
    nodes[-1].output[0] = "y"
    return _model(nodes, c, [_io("x", [1, 8])], [_io("y", [1, 8])], "gelu_only")


def gelu_shared() -> onnx.ModelProto:
    """A GELU whose Erf output is also read by another node: it must stay as it is."""
    nodes, c, y = _gelu("x", "/act")
    nodes[-1].output[0] = "y"
    nodes.append(helper.make_node("Neg", [nodes[1].output[0]], ["z"], name="/Neg"))
    return _model(nodes, c, [_io("x", [1, 8])], [_io("y", [1, 8]), _io("z", [1, 8])], "gelu_shared")


def erf_head() -> onnx.ModelProto:
    """Linear(16 -> 10) then a lone Erf (not a GELU): 'confidences' squashed into (-1, 1)."""
    (w,) = _weights(3, (16, 10))
    nodes, c, y = _linear("x", w, np.zeros(10, np.float32), "/fc")
    nodes.append(helper.make_node("Erf", [y], ["scores"], name="/Erf"))
    return _model(nodes, c, [_io("x", [1, 16])], [_io("scores", [1, 10])], "erf_head")


def erf_mlp() -> onnx.ModelProto:
    """Linear(16 -> 32), a bare Erf as the activation (not a GELU), Linear(32 -> 10)."""
    w1, w2 = _weights(6, (16, 32), (32, 10))
    nodes, c, h = _linear("x", w1, np.zeros(32, np.float32), "/fc1")
    nodes.append(helper.make_node("Erf", [h], ["/act/Erf_output_0"], name="/act/Erf"))
    more, c2, _ = _linear("/act/Erf_output_0", w2, np.zeros(10, np.float32), "/fc2", "logits")
    return _model(nodes + more, c | c2, [_io("x", [1, 16])], [_io("logits", [1, 10])], "erf_mlp")


def two_inputs() -> onnx.ModelProto:
    """Two inputs with a named dynamic batch ``N`` and a dynamic sequence length ``seq``."""
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"], name="/Add"),
             helper.make_node("ReduceMax", ["sum"], ["peak"], name="/ReduceMax", axes=[1], keepdims=0)]
    return _model(nodes, {}, [_io("a", ["N", "seq", 4]), _io("b", ["N", "seq", 4])], [_io("peak", ["N", 4])],
                  "two_inputs")


def unnamed_batch() -> onnx.ModelProto:
    """A dynamic batch without a name (shape ``[?, 6]``), as some exporters write it."""
    (w,) = _weights(4, (6, 3))
    nodes, c, _ = _linear("x", w, np.zeros(3, np.float32), "/fc", "y")
    return _model(nodes, c, [_io("x", [None, 6])], [_io("y", [None, 3])], "unnamed_batch")


def static() -> onnx.ModelProto:
    """Nothing to fix: every dimension is a number."""
    (w,) = _weights(5, (6, 3))
    nodes, c, _ = _linear("x", w, np.zeros(3, np.float32), "/fc", "y")
    return _model(nodes, c, [_io("x", [2, 6])], [_io("y", [2, 3])], "static")


def digits_cnn() -> onnx.ModelProto:
    import edgekit

    return onnx.load(edgekit.zoo.path("digits-cnn"))


EXAMPLES = {"digits-cnn": digits_cnn, "mlp-gelu": mlp_gelu, "mlp-gelu-2": lambda: mlp_gelu(2, swap_second=True),
            "mlp-gelu-static": lambda: mlp_gelu(1, batch=1), "gelu-on-input": gelu_on_input,
            "gelu-shared": gelu_shared, "erf-head": erf_head, "erf-mlp": erf_mlp, "two-inputs": two_inputs,
            "unnamed-batch": unnamed_batch, "static": static}


def example(name: str) -> onnx.ModelProto:
    """A fresh copy of an example model (yours to change)."""
    if name not in EXAMPLES:
        raise KeyError(f"no example model {name!r}; the examples are {', '.join(EXAMPLES)}")
    return EXAMPLES[name]()


def calibration(name: str, n: int = 64) -> np.ndarray:
    """``n`` inputs for ``example(name)``, without the batch axis: digits for digits-cnn, else N(0, 1)."""
    if name == "digits-cnn":
        import edgekit

        return edgekit.datasets.digits("train")[0][:n]
    dims = [d.dim_value for d in example(name).graph.input[0].type.tensor_type.shape.dim][1:]
    return np.random.default_rng(7).normal(size=(n, *dims)).astype(np.float32)


# -- looking at a model --------------------------------------------------------------------------

def dims(value: onnx.ValueInfoProto) -> list:
    """A tensor's shape as a list: numbers, names of dynamic dimensions, or None for unnamed ones."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value.type.tensor_type.shape.dim]


def shapes(model: onnx.ModelProto) -> dict:
    """``{"inputs": {name: dims}, "outputs": {name: dims}}`` (graph inputs that are weights left out)."""
    weights = {i.name for i in model.graph.initializer}
    return {"inputs": {v.name: dims(v) for v in model.graph.input if v.name not in weights},
            "outputs": {v.name: dims(v) for v in model.graph.output}}


def op_counts(model: onnx.ModelProto) -> dict:
    """``{op_type: how many nodes}``, sorted by op type."""
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def opset(model: onnx.ModelProto) -> int:
    """The version of the default ONNX operator set the model imports."""
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only (unused initializers left after a rewrite are only a warning)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def feeds(model: onnx.ModelProto, seed: int = 0) -> dict:
    """Random float32 inputs for a model whose input shapes are all numbers."""
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=d).astype(np.float32) for name, d in shapes(model)["inputs"].items()}


def run(model: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    """The model's outputs on the CPU execution provider."""
    return _session(model).run(None, feed)


def quantization(model: onnx.ModelProto) -> dict:
    """How a QDQ model stores its numbers.

    ``weights``: for each DequantizeLinear of a stored (initializer) tensor, ``"<type> x <scales>"``,
    e.g. ``"int8 x 16"`` for an int8 weight with 16 per-channel scales, counted.
    ``activations``: the types QuantizeLinear nodes produce, counted.
    """
    inits = {i.name: i for i in model.graph.initializer}
    name = lambda t: onnx.helper.tensor_dtype_to_np_dtype(t).name  # noqa: E731
    weights, acts = Counter(), Counter()
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            scales = int(np.prod(inits[n.input[1]].dims)) if n.input[1] in inits else 0
            weights[f"{name(inits[n.input[0]].data_type)} x {scales}"] += 1
        elif n.op_type == "QuantizeLinear":
            zp = inits.get(n.input[2]) if len(n.input) > 2 else None
            acts[name(zp.data_type) if zp is not None else "uint8"] += 1
    return {"weights": dict(sorted(weights.items())), "activations": dict(sorted(acts.items()))}


# -- what the checks call: your function on a fresh example, results as data -----------------------

def shapes_after(fix, name: str, *args) -> dict:
    """``shapes(fix(example(name), *args))``."""
    return shapes(fix(example(name), *args))


def run_after(fix, name: str, *args) -> list:
    """The output shapes when the fixed model runs on random inputs of its (now fixed) input shapes."""
    model = fix(example(name), *args)
    return [list(o.shape) for o in run(model, feeds(model))]


def rewrite_after(rewrite, name: str) -> dict:
    """Op counts, opset, output names and stored tensors of ``rewrite(example(name))`` (checked with
    onnx.checker first)."""
    model = rewrite(example(name))
    onnx.checker.check_model(model)
    return {"ops": op_counts(model), "opset": opset(model), "outputs": [o.name for o in model.graph.output],
            "initializers": sorted(t.name for t in model.graph.initializer)}


def rewrite_diff(rewrite, name: str) -> float:
    """The largest difference between the outputs of ``rewrite(example(name))`` and of the original
    model, on the same random inputs (a dynamic batch is run with 1)."""
    original = example(name)
    model = rewrite(example(name))
    fixed = {k: [v if isinstance(v, int) else 1 for v in d] for k, d in shapes(original)["inputs"].items()}
    feed = {k: np.random.default_rng(1).normal(size=d).astype(np.float32) * 3 for k, d in fixed.items()}
    return max(float(np.abs(a - b).max()) for a, b in zip(run(model, feed), run(original, feed)))


def quantize_after(quantize, name: str, n: int = 64) -> dict:
    """Shapes, op counts and number formats of ``quantize(example(name), calibration(name, n))``."""
    model = quantize(example(name), calibration(name, n))
    return {"shapes": shapes(model), "ops": op_counts(model), **quantization(model)}


def agreement_after(quantize, name: str = "digits-cnn") -> float:
    """The fraction of digits test images on which the quantized model's top-1 class equals the float one's."""
    import edgekit

    q = _session(quantize(example(name), calibration(name)))
    f = _session(example(name))
    x = edgekit.datasets.digits("test")[0]
    same = [q.run(None, {"input": xi[None]})[0].argmax() == f.run(None, {"input": xi[None]})[0].argmax() for xi in x]
    return float(np.mean(same))
