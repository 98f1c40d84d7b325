"""Tests of Lab 7 (pruning and efficient architectures): masks and sparsity on digits-cnn's weights,
accuracy of pruned models on the fixed digits test split, parameter and MAC counts of ONNX graphs.
Nothing here is timed."""

import numpy as np
import onnx
from onnx import numpy_helper

import edgekit
from edgekit.grading import call, case, close, equal, obj, ref

digits = onnx.load(edgekit.zoo.path("digits-cnn"))
W = {t.name: numpy_helper.to_array(t) for t in digits.graph.initializer}
weights = {n.input[1]: W[n.input[1]] for n in digits.graph.node if n.op_type in ("Conv", "Gemm")}
n_total = sum(w.size for w in weights.values())
rng = np.random.default_rng(7)


def ref_masks(ws, sparsity, scope):
    """Masks computed here, passed as data, so that q3 is graded on its own (not on q1/q2's answers)."""
    def keep(flat, k):
        m = np.ones(flat.size, bool)
        m[np.argsort(flat, kind="stable")[:k]] = False
        return m
    if scope == "layer":
        return {n: keep(np.abs(w).ravel(), int(round(sparsity * w.size))).reshape(w.shape) for n, w in ws.items()}
    flat = np.concatenate([np.abs(w).ravel() for w in ws.values()])
    m, out, i = keep(flat, int(round(sparsity * flat.size))), {}, 0
    for n, w in ws.items():
        out[n] = m[i:i + w.size].reshape(w.shape)
        i += w.size
    return out


def arrays_of(model) -> dict:
    """{name: array} of every initializer of a model the student's process holds, read here from its bytes
    (not with the notebook's initializer_arrays, which the student could redefine)."""
    data = model.SerializeToString()
    if not isinstance(data, bytes) or len(data) > 2_000_000:
        raise ValueError("expected an onnx.ModelProto of digits-cnn's size")
    return {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer}


def sparsity_of(masks):
    return {n: float(1 - np.mean(m)) for n, m in masks.items()}


# -- q1: one magnitude mask, sparsity --------------------------------------------------------------
small = np.array([[0.3, -2.0, 0.05, 1.1, -0.4], [0.9, -0.01, 0.6, -1.5, 0.2]], np.float32)
case("q1", "prune 40% of a 2x5 array", call("magnitude_mask", small, 0.4), equal(), public=True)
case("q1", "sparsity of an array", call("sparsity", np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -0.0]])), close(), public=True)
case("q1", "sparsity 0 keeps everything", call("magnitude_mask", small, 0.0), equal())
case("q1", "sparsity 1 prunes everything", call("magnitude_mask", small, 1.0), equal())
case("q1", "a 4-D conv weight at 70%", call("magnitude_mask", weights["2.weight"], 0.7), equal(), weight=2)
case("q1", "k = round(sparsity * size): 29 of 100, not 28", call("magnitude_mask", rng.normal(size=100), 0.29), equal())
case("q1", "ties: the earlier position is pruned first", call("magnitude_mask", np.array([1.0, -1.0, 1.0, 2.0]), 0.5),
     equal())
case("q1", "the mask is boolean", lambda ns: str(ns.magnitude_mask(small, 0.5).dtype), equal())
case("q1", "sparsity of a boolean mask counts False", call("sparsity", np.array([True, False, False, True, True])),
     close())
case("q1", "sparsity of a pruned weight", lambda ns: ns.sparsity(weights["6.weight"] * ns.magnitude_mask(weights["6.weight"], 0.9)),
     close())

# -- q2: per-layer and global masks ----------------------------------------------------------------
scaled = {"a": rng.normal(size=(4, 6)) * 0.01, "b": rng.normal(size=(8, 3, 3)), "c": rng.normal(size=50) * 2}
case("q2", "global masks of digits-cnn at 80%", call("global_masks", ref("weights"), 0.8), equal(), public=True)
case("q2", "per-layer masks of digits-cnn at 50%", call("layer_masks", weights, 0.5), close(rtol=0, atol=0), weight=2)
case("q2", "global masks of digits-cnn at 50%", call("global_masks", weights, 0.5), close(rtol=0, atol=0), weight=2)
case("q2", "global 80%: the sparsity of each layer", lambda ns: sparsity_of(ns.global_masks(weights, 0.8)),
     close(rtol=1e-9, atol=1e-3))
case("q2", f"global 90%: exactly round(0.9 x {n_total:,}) weights pruned in all",
     lambda ns: int(sum((~np.asarray(m)).sum() for m in ns.global_masks(weights, 0.9).values())), equal())
case("q2", "global: a layer of tiny weights goes first", call("global_masks", scaled, 0.25), close(rtol=0, atol=0))
case("q2", "per-layer on layers of different scales", call("layer_masks", scaled, 0.25), close(rtol=0, atol=0))

# -- q3: pruned models and their accuracy ----------------------------------------------------------
g80, g90, l50 = ref_masks(weights, 0.8, "global"), ref_masks(weights, 0.9, "global"), ref_masks(weights, 0.5, "layer")
none_kept = {n: np.zeros(w.shape, bool) for n, w in weights.items()}
one_image = close(atol=1.5 / 364)  # at most one test image may differ
case("q3", "accuracy of the dense model", call("accuracy", ref("digits_model")), close(atol=1e-9), public=True)
case("q3", "accuracy at 80% global sparsity", call("pruned_accuracy", g80), one_image, public=True)
case("q3", "accuracy at 90% global sparsity", lambda ns: ns.accuracy(ns.apply_masks(ns.digits_model, g90)),
     one_image)
case("q3", "accuracy at 50% per-layer sparsity", lambda ns: ns.accuracy(ns.apply_masks(ns.digits_model, l50)),
     one_image)
case("q3", "no weight left: every output is the bias",
     lambda ns: ns.accuracy(ns.apply_masks(ns.digits_model, none_kept)), one_image)
case("q3", "the pruned model's initializers (weights masked, biases kept)",
     lambda ns: arrays_of(ns.apply_masks(ns.digits_model, g80)), close(rtol=0, atol=0), weight=2)
case("q3", "apply_masks leaves the original model unchanged (and returns the pruned one)",
     lambda ns: [arrays_of(ns.apply_masks(ns.digits_model, g90)), arrays_of(ns.digits_model)],
     close(rtol=0, atol=0))

# -- q4: parameters and MACs of every Conv and Gemm -------------------------------------------------
case("q4", "digits-cnn", call("layer_costs", obj("edgekit.runtime.zoo:path", "digits-cnn")), equal(), public=True)
case("q4", "mobilenetv2-224 (52 Conv incl. depthwise, 1 Gemm)", call("layer_costs", obj("edgekit.runtime.zoo:path", "mobilenetv2-224")),
     equal(), weight=2)
case("q4", "an inverted-residual block with stride 2",
     call("layer_costs", obj("lab07_support:inverted_residual", 24, 6, 32, 56, 2)), equal())
case("q4", "the same block with a standard 3x3 convolution",
     call("layer_costs", obj("lab07_support:standard_block", 16, 4, 16, 28)), equal())
case("q4", "Gemm weights stored [in, out] (transB = 0)", call("layer_costs", obj("lab07_support:mlp", (64, 48, 10))),
     equal())
case("q4", "Gemm weights stored [out, in] (transB = 1)",
     call("layer_costs", obj("lab07_support:mlp", (30, 20, 5), trans_b=True)), equal())

# -- q5: standard vs depthwise-separable convolution ------------------------------------------------
case("q5", "MACs of MobileNetV2's first convolution", call("conv_macs", 3, 32, 3, 112, 112), equal(), public=True)
case("q5", "separable / standard for 32 -> 64 channels, 3x3", call("separable_ratio", 32, 64, 3), close(rtol=1e-9),
     public=True)
case("q5", "a depthwise convolution (groups = channels)", call("conv_macs", 96, 96, 3, 56, 56, groups=96), equal())
case("q5", "a grouped convolution (groups = 4)", call("conv_macs", 64, 128, 3, 14, 14, groups=4), equal())
case("q5", "a pointwise convolution", call("conv_macs", 144, 24, 1, 56, 56), equal())
case("q5", "separable MACs, 144 -> 24 channels at 56x56", call("separable_macs", 144, 24, 3, 56, 56), equal())
case("q5", "separable MACs, 5x5 kernel", call("separable_macs", 40, 80, 5, 28, 28), equal())
case("q5", "separable / standard for 192 -> 192, 3x3", call("separable_ratio", 192, 192, 3), close(rtol=1e-9))
case("q5", "separable / standard for 3 -> 16, 3x3 (few channels: little gain)", call("separable_ratio", 3, 16, 3),
     close(rtol=1e-9))
