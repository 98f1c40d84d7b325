"""A float model made ready for a Snapdragon NPU, with ONNX Runtime's own QNN helpers (``edgekit
npu-check --calibrate``): dynamic input dimensions fixed to 1, then QDQ-quantized.

QNN's HTP backend needs fixed shapes (one dynamic dimension and every node falls back to the CPU)
and quantized ops. ``onnxruntime.quantization.execution_providers.qnn`` does both the way the QNN
execution provider expects: ``qnn_preprocess_model`` fixes the shapes and fuses what HTP has one op
for (Gelu, LpNormalization, SpaceToDepth), ``get_qnn_qdq_config`` sets the quantization overrides
QNN needs (e.g. for Sigmoid, Tanh, MatMul); ``quantize`` writes the QDQ model. The calibration
data reaches ONNX Runtime through :func:`edgekit.deploy.calibration.calibration_reader`, the reader
``quantize(method="static")`` uses too.

>>> import tempfile
>>> path, notes = prepare_for_npu("digits-cnn", "digits", tempfile.mkdtemp())
>>> path.endswith("digits-cnn_qdq.onnx"), notes[-1].startswith("quantized (QDQ, uint8 activations")
(True, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InputError
from .calibration import calibration_reader

QDQ_SETTINGS = "QDQ, uint8 activations, int8 symmetric per-channel weights"
CALIBRATIONS = ("digits", "random")


def dynamic_inputs(model: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(input, "1,1,8,8"), ...], ["input:batch", ...])``: each input with a dynamic dimension,
    its shape with those set to 1 (``qnn_preprocess_model``'s ``dynamic_input_shapes``), and the
    dimensions fixed, named. ``model``: an ``onnx.ModelProto``."""
    inits = {i.name for i in model.graph.initializer}
    shapes, fixed = [], []
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        free = [d for d in dims if not d.HasField("dim_value")]
        if value.name in inits or not free:
            continue
        fixed += [f"{value.name}:{d.dim_param or '?'}" for d in free]
        shapes.append((value.name, ",".join(str(d.dim_value) if d.HasField("dim_value") else "1" for d in dims)))
    return shapes, fixed


def _calibration_data(calibration: str, model, samples: int) -> np.ndarray:
    """``samples`` inputs for the (static-shaped) ``model``: digits' train split, or uniform [0, 1) noise."""
    spec = model.inputs[0]
    if calibration == "digits":
        from ..runtime.datasets import digits

        if list(spec.shape[1:]) != [1, 8, 8]:
            raise InputError(f"calibrating on digits needs an input of shape [1,1,8,8], got {spec.shape}: "
                             "calibrate on random inputs (--calibrate random)")
        return digits(split="train")[0][:samples]
    if calibration == "random":
        samples = min(samples, 16)  # calibration runs the float model on CPU: keep big models quick
        return np.random.default_rng(0).random((samples, *spec.shape[1:])).astype(np.float32)
    raise InputError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {calibration!r}")


def prepare_for_npu(model: Any, calibration: str, out_dir: str | os.PathLike, *,
                    samples: int = 64) -> tuple[str, list[str]]:
    """Write ``model`` (zoo name or path) into ``out_dir`` with static input shapes and, unless it is
    already quantized, QDQ-quantized (:data:`QDQ_SETTINGS`) after calibrating on ``calibration``
    (``"digits"`` or ``"random"``). Returns the path to check and one note per step taken."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config, qnn_preprocess_model
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    from ..runtime.model import load
    from ..runtime.zoo import resolve
    from .npu import graph_facts
    from .quantization import _captured_logs

    src, out_dir = resolve(model)[0], Path(out_dir)
    proto = onnx.load(str(src))
    shapes, fixed = dynamic_inputs(proto)
    if graph_facts(src)["quantized"]:
        note = "already quantized: --calibrate did not quantize it again"
        if not shapes:
            return str(src), [note]
        for name, shape in shapes:  # the same ORT tools qnn_preprocess_model uses, without its float rewrites
            make_input_shape_fixed(proto.graph, name, [int(d) for d in shape.split(",")])
        fix_output_shapes(proto)
        dst = out_dir / f"{src.stem}_fixed.onnx"
        onnx.save(proto, str(dst))
        return str(dst), [f"fixed dynamic dimension(s) {', '.join(fixed)} to 1 -> {dst}", note]
    notes, work = [], out_dir / f"{src.stem}_qnn.onnx"
    # ORT's quantization tools log advice ("consider pre-processing") and renamed nodes on the root logger
    with _captured_logs():
        if qnn_preprocess_model(str(src), str(work), dynamic_input_shapes=shapes or None):
            notes.append(f"fixed dynamic dimension(s) {', '.join(fixed)} to 1 with qnn_preprocess_model -> {work}"
                         if shapes else f"qnn_preprocess_model rewrote the graph for QNN -> {work}")
        else:  # nothing to change: it wrote no file
            work = src
        float_model = load(str(work), providers="cpu")
        data = _calibration_data(calibration, float_model, samples)
        config = get_qnn_qdq_config(str(work), calibration_reader(data, float_model),
                                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        dst = out_dir / f"{src.stem}_qdq.onnx"
        quantize(str(work), str(dst), config)
    notes.append(f"quantized ({QDQ_SETTINGS}; calibrated on {len(data)} {calibration} inputs) -> {dst}")
    return str(dst), notes
