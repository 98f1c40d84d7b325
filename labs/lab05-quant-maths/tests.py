"""Tests of Lab 5 (quantization maths). Reference values come from the instructor's numpy solution;
ONNX Runtime itself (one-node QuantizeLinear, DequantizeLinear and MatMulInteger graphs, and its
quantization tool's compute_scale_zp) is a second, independent oracle for the core cases."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization.quant_utils import compute_scale_zp

import edgekit
from edgekit.grading import against, call, case, close, equal

# -- ONNX Runtime as an oracle ---------------------------------------------------------------------
ONNX_TYPE = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


def _session(op, inputs, out_type):
    node = helper.make_node(op, [name for name, _, _ in inputs], ["y"])
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info("y", out_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def ort_quantize(x, scale, zp, dtype):
    s = _session("QuantizeLinear", [("x", TensorProto.FLOAT, None), ("s", TensorProto.FLOAT, []),
                                    ("z", ONNX_TYPE[dtype], [])], ONNX_TYPE[dtype])
    return s.run(None, {"x": np.asarray(x, np.float32), "s": np.array(scale, np.float32), "z": np.array(zp, dtype)})[0]


def ort_dequantize(q, scale, zp):
    t = ONNX_TYPE[q.dtype.name]
    s = _session("DequantizeLinear", [("q", t, None), ("s", TensorProto.FLOAT, []), ("z", t, [])], TensorProto.FLOAT)
    return s.run(None, {"q": q, "s": np.array(scale, np.float32), "z": np.array(zp, q.dtype)})[0]


def ort_matmul_integer(qa, za, qb, zb):
    ta, tb = ONNX_TYPE[qa.dtype.name], ONNX_TYPE[qb.dtype.name]
    s = _session("MatMulInteger", [("a", ta, None), ("b", tb, None), ("za", ta, []), ("zb", tb, [])],
                 TensorProto.INT32)
    return s.run(None, {"a": qa, "b": qb, "za": np.array(za, qa.dtype), "zb": np.array(zb, qb.dtype)})[0]


def ort_qparams(xmin, xmax, symmetric):
    qmin, qmax = (np.array(-127, np.int8), np.array(127, np.int8)) if symmetric else (
        np.array(0, np.uint8), np.array(255, np.uint8))
    zp, scale = compute_scale_zp(np.array(xmin, np.float32), np.array(xmax, np.float32), qmin, qmax,
                                 symmetric=symmetric)
    return float(scale), int(zp)


def qparams_close(got, want):
    """(scale, zero point): the scale within 1e-6 relative, the zero point exactly."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a pair (scale, zero_point), got {got!r}"
    msg = close(rtol=1e-6)(got[0], want[0])
    if msg:
        return f"scale: {msg}"
    if float(got[1]) != float(want[1]):
        return f"zero point: expected {want[1]}, got {got[1]}"
    return None


def error_within(got, want):
    """Two-sided: ``want`` is (the round-trip error ONNX Runtime gives, scale / 2). The answer must be that
    error (relative 1e-4) and at most scale / 2: a degenerate 0, -inf or nan passes neither."""
    error, bound = want
    if isinstance(got, bool) or not isinstance(got, (int, float, np.number)) or not np.isfinite(float(got)):
        return f"expected a finite number near {error:.6g}, got {got!r}"
    if not np.isclose(float(got), error, rtol=1e-4, atol=1e-9):
        return (f"expected {error:.6g} (the round-trip error of ONNX Runtime's QuantizeLinear/DequantizeLinear), "
                f"got {float(got):.6g}")
    return None if float(got) <= bound else f"expected at most scale / 2 = {bound:.6g}, got {float(got):.6g}"


def ort_roundtrip_error(x, dtype):
    """max |x - DequantizeLinear(QuantizeLinear(x))| with ONNX Runtime's own scale and zero point."""
    scale, zp = ort_qparams(x.min(), x.max(), dtype == "int8")
    return float(np.abs(x - ort_dequantize(ort_quantize(x, scale, zp, dtype), scale, zp)).max())


rng = np.random.default_rng(5)

# -- q1: scale and zero point ----------------------------------------------------------------------
case("q1", "asymmetric uint8 for [-1, 3]", call("asymmetric_qparams", -1.0, 3.0), close(rtol=1e-6, dtype=True), public=True)
case("q1", "symmetric int8 for [-0.5, 2]", call("symmetric_qparams", -0.5, 2.0), close(rtol=1e-6, dtype=True), public=True)
case("q1", "all negative [-3, -1]: the range is stretched to 0, zero point 255",
     call("asymmetric_qparams", -3.0, -1.0), qparams_close)
case("q1", "all positive [2, 6]: zero point 0", call("asymmetric_qparams", 2.0, 6.0), qparams_close)
case("q1", "a constant zero tensor (empty range): scale 1, zero point 0", call("asymmetric_qparams", 0.0, 0.0),
     qparams_close)
case("q1", "a constant tensor of 2.0", call("asymmetric_qparams", 2.0, 2.0), qparams_close)
case("q1", "symmetric, constant zero tensor", call("symmetric_qparams", 0.0, 0.0), qparams_close)
case("q1", "symmetric, all negative", call("symmetric_qparams", -4.0, -1.0), qparams_close)
for i, (lo, hi) in enumerate([(-0.731, 2.918), (-5.27, 0.33), (-1e-3, 4e-3)]):
    case("q1", f"asymmetric agrees with ONNX Runtime's compute_scale_zp ({lo}, {hi})",
         call("asymmetric_qparams", lo, hi), against(ort_qparams(lo, hi, False), qparams_close))
    case("q1", f"symmetric agrees with ONNX Runtime's compute_scale_zp ({lo}, {hi})",
         call("symmetric_qparams", lo, hi), against(ort_qparams(lo, hi, True), qparams_close))

# -- q2: quantize and dequantize (ONNX QuantizeLinear / DequantizeLinear) --------------------------
x_pub = np.array([-1.0, -0.3, 0.0, 0.0078125, 0.26, 1.7, 3.0, 4.5], np.float32)  # 0.0078125 / (1/64) = 0.5: a tie
ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32) * 0.5
x_rand = (rng.normal(size=2000) * 1.3).astype(np.float32)
case("q2", "uint8, scale 1/64, zero point 64", call("quantize", x_pub, 1 / 64, 64, "uint8"), equal(dtype=True), public=True)
case("q2", "dequantize those", call("dequantize", np.array([0, 45, 64, 81, 173, 255], np.uint8), 1 / 64, 64),
     close(atol=0, dtype=True), public=True)
case("q2", "halves round to even (ONNX semantics): scale 0.5, zero point 10", call("quantize", ties, 0.5, 10, "uint8"),
     equal(), weight=2)
case("q2", "saturation: values outside the range clip to 0 and 255",
     call("quantize", np.array([-100.0, -1.1, 1e9, 7.9], np.float32), 0.03, 37, "uint8"), equal())
case("q2", "int8 saturates to -128..127", call("quantize", np.array([-9.0, -2.6, 0.04, 9.0], np.float32), 0.02, 0, "int8"),
     equal())
case("q2", "the result's dtype", lambda ns: [str(ns.quantize(x_pub, 0.1, 0, d).dtype) for d in ("uint8", "int8")],
     equal())
case("q2", "uint8 agrees with ONNX Runtime's QuantizeLinear", call("quantize", x_rand, 0.0123, 117, "uint8"),
     against(ort_quantize(x_rand, 0.0123, 117, "uint8"), equal()), weight=2)
case("q2", "int8 agrees with ONNX Runtime's QuantizeLinear", call("quantize", x_rand, 0.0171, 0, "int8"),
     against(ort_quantize(x_rand, 0.0171, 0, "int8"), equal()))
q_rand = rng.integers(-128, 128, size=500).astype(np.int8)
case("q2", "int8 dequantize agrees with ONNX Runtime's DequantizeLinear", call("dequantize", q_rand, 0.0171, -3),
     against(ort_dequantize(q_rand, 0.0171, -3), close(atol=0)))
case("q2", "dequantize(zero point) is exactly 0", call("dequantize", np.array([131], np.uint8), 0.0133, 131),
     close(atol=0))

# -- q3: the round trip and its error ---------------------------------------------------------------
arrays = {f"normal, seed {s}": (np.random.default_rng(s).normal(size=1000) * (s + 1) * 0.7 + 0.3 * s).astype(np.float32)
          for s in range(3)}
neg = -np.abs(np.random.default_rng(7).normal(size=300)).astype(np.float32) - 0.5
case("q3", "uint8 round trip", call("fake_quant", x_pub, "uint8"), close(atol=1e-6, dtype=True), public=True)
case("q3", "int8 max error", call("max_roundtrip_error", x_pub, "int8"), close(rtol=1e-5), public=True)
for name, x in arrays.items():
    case("q3", f"uint8 round trip, {name}", call("fake_quant", x, "uint8"), close(atol=1e-6))
    case("q3", f"int8 round trip, {name}", call("fake_quant", x, "int8"), close(atol=1e-6))
    for dtype, qp in (("uint8", ort_qparams(x.min(), x.max(), False)), ("int8", ort_qparams(x.min(), x.max(), True))):
        case("q3", f"property: {dtype} error <= scale / 2 ({name})", call("max_roundtrip_error", x, dtype),
             against((ort_roundtrip_error(x, dtype), qp[0] / 2 * (1 + 1e-5)), error_within))
case("q3", "a constant tensor of 3.0", call("fake_quant", np.full(10, 3.0, np.float32), "uint8"), close(atol=1e-6))
case("q3", "a constant zero tensor comes back as zeros", call("fake_quant", np.zeros(6, np.float32), "int8"),
     close(atol=0))
case("q3", "all negative values", call("fake_quant", neg, "uint8"), close(atol=1e-6))
with_zero = np.array([-0.71, 0.0, 0.3, 2.2, 0.0], np.float32)
case("q3", "zero is exactly representable: 0 comes back as exactly 0",
     lambda ns: [float(v) for d in ("uint8", "int8") for v in ns.fake_quant(with_zero, d)[[1, 4]]], equal())

# -- q4: per-tensor vs per-channel -----------------------------------------------------------------
digits = onnx.load(edgekit.zoo.path("digits-cnn"))
W = {t.name: numpy_helper.to_array(t) for t in digits.graph.initializer}
conv2, fc1 = W["2.weight"], W["6.weight"]
zero_ch = conv2[:4].copy()
zero_ch[2] = 0
outlier = conv2.copy()
outlier[0, 0, 0, 0] = 10 * np.abs(conv2).max()
case("q4", "scales of digits-cnn's first conv", call("per_channel_scales", W["0.weight"]), close(rtol=1e-6, dtype=True), public=True)
case("q4", "per-channel round trip of digits-cnn's first conv", call("fake_quant_per_channel", W["0.weight"]),
     close(atol=1e-6), public=True)
case("q4", "scales of the second conv [32, 16, 3, 3]", call("per_channel_scales", conv2), close(rtol=1e-6))
case("q4", "scales of a Gemm weight [32, 512]", call("per_channel_scales", fc1), close(rtol=1e-6))
case("q4", "scales along axis 1", call("per_channel_scales", fc1, axis=1), close(rtol=1e-6))
case("q4", "an all-zero channel gets scale 1", call("per_channel_scales", zero_ch), close(rtol=1e-6))
case("q4", "per-channel round trip of a Gemm weight", call("fake_quant_per_channel", fc1), close(atol=1e-6), weight=2)
case("q4", "per-channel round trip along axis 1", call("fake_quant_per_channel", fc1[:, :40], axis=1), close(atol=1e-6))
case("q4", "an outlier only hurts its own channel", call("fake_quant_per_channel", outlier), close(atol=1e-6))
case("q4", "an all-zero channel comes back as zeros", call("fake_quant_per_channel", zero_ch), close(atol=1e-6))

# -- q5: integer matrix multiplication ---------------------------------------------------------------
qa = rng.integers(0, 256, size=(3, 4)).astype(np.uint8)
qb = rng.integers(-128, 128, size=(4, 2)).astype(np.int8)
qa_big = rng.integers(0, 256, size=(5, 3000)).astype(np.uint8)
qb_big = rng.integers(-128, 128, size=(3000, 4)).astype(np.int8)
qb_u8 = rng.integers(0, 256, size=(3000, 4)).astype(np.uint8)
a_f = rng.normal(size=(6, 50)).astype(np.float32) + 0.4
b_f = (rng.normal(size=(50, 7)) * 0.1).astype(np.float32)
case("q5", "a small int matmul", call("int_matmul", qa, 121, qb, 0), equal(dtype=True), public=True)
case("q5", "a quantized matmul", call("quantized_matmul", a_f[:2, :8], b_f[:8, :3]), close(rtol=1e-4, atol=1e-5),
     public=True)
case("q5", "K = 3000 agrees with ONNX Runtime's MatMulInteger (uint8 x int8)", call("int_matmul", qa_big, 77, qb_big, 0),
     against(ort_matmul_integer(qa_big, 77, qb_big, 0), equal()), weight=2)
case("q5", "uint8 x uint8 with both zero points, K = 3000", call("int_matmul", qa_big, 255, qb_u8, 3),
     against(ort_matmul_integer(qa_big, 255, qb_u8, 3), equal()))
case("q5", "no uint8 overflow: 255 x 255 summed 3000 times",
     call("int_matmul", np.full((2, 3000), 255, np.uint8), 0, np.full((3000, 2), 255, np.uint8), 0), equal())
case("q5", "accumulators are int32", lambda ns: str(ns.int_matmul(qa, 121, qb, 0).dtype), equal(), weight=0.5)
case("q5", "quantized matmul of a 6x50 by 50x7 product", call("quantized_matmul", a_f, b_f), close(rtol=1e-4, atol=1e-5),
     weight=2)
case("q5", "quantized matmul with an all-negative a", call("quantized_matmul", -np.abs(a_f), b_f),
     close(rtol=1e-4, atol=1e-5))
