"""Quantize a model with ONNX Runtime's own tools, and report what it cost, gained and hides.

This wraps ``onnxruntime.quantization`` (its words: ``QuantFormat``, ``QuantType``,
``CalibrationMethod``, ``per_channel``, ``activation_type``/``weight_type``) and adds the report:
size before/after, latency ratio quantized/fp32 (interleaved at 1 thread), accuracy delta or
fidelity, the op histogram of the file and of the graph ORT actually runs, and the traps:

* ``method="dynamic"`` on a CNN turns convolutions into ``ConvInteger``, slower than fp32 on CPUs;
* ops left in float between ``DequantizeLinear`` and ``QuantizeLinear`` (no quantized kernel:
  e.g. every op with ``int16`` activations) pay for the conversions and gain nothing;
* fp16 on the CPU provider: ORT inserts ``Cast`` nodes and computes in float32.

>>> import os, tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> r = quantize("digits-cnn", os.path.join(tmp.name, "digits-int8.onnx"), measure=False)
>>> r.executes_as["QLinearConv"], abs(r.accuracy["delta_points"]) <= 1.0
(2, True)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._errors import MissingExtraError, QuantizationError
from .calibration import calibration_reader, default_data
from .optimization import _ops, executed_graph, fallback_ops, interleaved_p50, model_path, op_histogram

METHODS, FORMATS = ("static", "dynamic", "fp16"), ("qdq", "qoperator")
TYPES = {"int8": "QInt8", "uint8": "QUInt8", "int16": "QInt16", "uint16": "QUInt16", "int4": "QInt4", "uint4": "QUInt4"}
CALIBRATIONS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile", "distribution": "Distribution"}
DYNAMIC_CONV = ("dynamic quantization turns convolutions into ConvInteger, which ORT runs slower than fp32 on "
                "most CPUs; use method='static'")


class QuantizationWarning(UserWarning):
    """A quantized model that is valid but falls into a known trap (slower, or not really quantized)."""


def _choice(value: Any, table: dict[str, str], what: str, enum: Any) -> Any:
    if isinstance(value, enum):
        return value
    if value not in table:
        raise QuantizationError(f"{what} must be one of {', '.join(table)} (or {enum.__name__}), got {value!r}")
    return getattr(enum, table[value])


# --- traps ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _captured_logs():
    """Collect what onnxruntime.quantization logs (it uses the root logger) instead of printing it."""
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)


# --- the result ----------------------------------------------------------------------------

@dataclass
class QuantResult:
    """What :func:`quantize` did and measured; ``latency``/``accuracy`` are empty when not measured."""

    model: str
    source: str
    output: str
    method: str
    options: dict[str, Any]
    size_before: int
    size_after: int
    ops: dict[str, int]
    executes_as: dict[str, int]
    fallback_ops: dict[str, int] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before

    @property
    def label(self) -> str:
        o = self.options
        if self.method == "fp16":
            return "fp16"
        if self.method == "dynamic":
            return f"dynamic w:{o['weight_type']}" + " per-channel" * o["per_channel"]
        return " ".join([o["format"], f"a:{o['activation_type']} w:{o['weight_type']}", o["calibration"]]
                        + ["per-channel"] * o["per_channel"] + ["reduce-range"] * o["reduce_range"])

    def to_dict(self) -> dict:
        return {"schema": "edgekit.quantize/1", **asdict(self), "size_ratio": self.size_ratio, "label": self.label}

    def __str__(self) -> str:
        rows = [f"{self.model} -> {self.output}: {'static ' * (self.method == 'static')}{self.label}",
                f"  size      {_size(self.size_before)} -> {_size(self.size_after)} ({self.size_ratio:.2f}x)"]
        if self.latency:
            lat = self.latency
            rows.append(f"  latency   {lat['ratio']:.2f}x fp32 at {lat['threads']} thread (median of {lat['rounds']} "
                        f"interleaved rounds, range {lat['ratio_min']:.2f}-{lat['ratio_max']:.2f}; fp32 p50 "
                        f"{lat['fp32_p50_ms']:.3f} ms, quantized {lat['quant_p50_ms']:.3f} ms)"
                        f"  [{lat.get('conditions', 'conditions not recorded')}]")
        if self.accuracy:
            a = self.accuracy
            rows.append(f"  accuracy  {a['fp32']:.2%} -> {a['quantized']:.2%} ({a['delta_points']:+.2f} points) "
                        f"on {a['dataset']} ({a['n']})")
        if self.fidelity:
            f = self.fidelity
            rows.append(f"  fidelity  top-1 agreement {f['top1_agreement']:.2%}, cosine {f['cosine']:.5f}, "
                        f"max |diff| {f['max_abs_diff']:.4g} on {f['dataset']}")
        rows += [f"  ops       {_ops(self.ops)}", f"  runs as   {_ops(self.executes_as)}"]
        return "\n".join(rows + [f"  WARNING   {w}" for w in self.warnings] + [f"  note      {n}" for n in self.notes])


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _traps(r: QuantResult) -> list[str]:
    out = []
    if "ConvInteger" in r.ops:
        out.append(DYNAMIC_CONV)
    if r.fallback_ops:
        out.append(f"ops left in float between DequantizeLinear and QuantizeLinear (no quantized kernel in this "
                   f"ONNX Runtime for these types): {_ops(r.fallback_ops)}; they run in float32 and add conversions"
                   + (" — int16 activations simulate accuracy, they are not faster on CPU"
                      if str(r.options.get("activation_type")).endswith("16") else ""))
    added_casts = r.executes_as.get("Cast", 0) - r.ops.get("Cast", 0)
    if r.method == "fp16" and added_casts > 0:
        out.append(f"fp16 on the CPU provider: ONNX Runtime inserted {added_casts} Cast nodes because it lacks fp16 "
                   "kernels for those ops here, so they compute in float32; fp16 halves the file, and pays off on "
                   "GPUs/NPUs with fp16 units")
    if r.latency and r.latency["ratio_min"] > 1.0:
        out.append(f"measured: the {r.method} model is {r.latency['ratio']:.2f}x the fp32 latency (slower in every "
                   f"round) at {r.latency['threads']} thread")
    return out


def quantize(model: Any, out: str | os.PathLike | None = None, *, method: str = "static", format: str = "qdq",
             per_channel: bool = True, calibration: str = "minmax", calibration_data: Any = None,
             activation_type: str = "uint8", weight_type: str = "int8", reduce_range: bool = False,
             preprocess: bool = True, measure: bool = True, eval_data: Any = None, rounds: int = 5,
             min_s: float = 0.3, extra_options: dict | None = None) -> QuantResult:
    """Quantize ``model`` (zoo name, path or Model) into ``out`` (default ``./<stem>.<variant>.onnx``)
    and report; see the module docstring. ``format``/``calibration``/``activation_type`` apply to
    ``method="static"``. ``activation_type="uint8"`` with int8 weights (U8S8) is the default because
    x86 kernels take unsigned activations (see ``benchmarks/quantization.py``). ``measure=False``
    skips the latency measurement (``rounds`` interleaved blocks of ``min_s`` seconds each)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    from .evaluation import _as_model, evaluate

    if method not in METHODS or format not in FORMATS:
        raise QuantizationError(f"method must be one of {METHODS} and format one of {FORMATS}; "
                                f"got {method!r}, {format!r}")
    act = _choice(activation_type, TYPES, "activation_type", QuantType)
    wt = _choice(weight_type, TYPES, "weight_type", QuantType)
    calib = _choice(calibration, CALIBRATIONS, "calibration", CalibrationMethod)
    if method == "static" and format == "qoperator" and "16" in act.name:
        raise QuantizationError("16-bit activations exist only as QDQ (QuantizeLinear/DequantizeLinear pairs): "
                                "use format='qdq', or activation_type='uint8'")
    src, fp32 = model_path(model), _as_model(model)
    options = dict(format=format, per_channel=per_channel, calibration=str(calibration),
                   activation_type=str(activation_type), weight_type=str(weight_type), reduce_range=reduce_range,
                   preprocess=preprocess and method != "fp16")
    variant = {"static": f"{activation_type}-{format}", "dynamic": f"dynamic-{weight_type}", "fp16": "fp16"}[method]
    out = Path(out) if out is not None else Path.cwd() / f"{src.stem}.{variant}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # onnxruntime.quantization logs warnings (kept as notes) and prints progress (dropped)
    with tempfile.TemporaryDirectory() as tmp, _captured_logs() as logs, contextlib.redirect_stdout(io.StringIO()):
        # ONNX Runtime's quantizers write "<model>-inferred.onnx" next to the path they are given:
        # work on a copy here, never beside the source (a read-only zoo, or a student's sandbox).
        work = Path(tmp) / "source.onnx"
        shutil.copyfile(src, work)
        if options["preprocess"]:
            if importlib.util.find_spec("sympy") is None:
                raise MissingExtraError("quant_pre_process (symbolic shape inference) needs sympy: pip install sympy "
                                        "— or pass preprocess=False (--no-preprocess) to quantize without it")
            from onnxruntime.quantization.shape_inference import quant_pre_process

            try:
                quant_pre_process(str(work), str(Path(tmp) / "preprocessed.onnx"))
            except Exception as exc:
                raise QuantizationError(f"quant_pre_process failed on {src.name}: {str(exc)[-300:]} — retry with "
                                        "preprocess=False") from exc
            work = Path(tmp) / "preprocessed.onnx"
        if method == "static":
            reader = calibration_reader(calibration_data, fp32)
            quant_format = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}[format]
            quantize_static(str(work), str(out), reader, quant_format=quant_format,
                            per_channel=per_channel, reduce_range=reduce_range, activation_type=act, weight_type=wt,
                            calibrate_method=calib, extra_options=extra_options)
        elif method == "dynamic":
            quantize_dynamic(str(work), str(out), per_channel=per_channel, reduce_range=reduce_range, weight_type=wt,
                             extra_options=extra_options)
        else:
            import onnx

            try:
                from onnxruntime.transformers.float16 import convert_float_to_float16
            except ImportError:  # older wheels: the same converter lives in onnxconverter-common
                from onnxconverter_common.float16 import convert_float_to_float16
            # keep_io_types: inputs/outputs stay float32, so the model is a drop-in replacement
            onnx.save(convert_float_to_float16(onnx.load(str(work)), keep_io_types=True), str(out))
    executed = _executed_or_explain(out, method, weight_type)
    r = QuantResult(fp32.name, str(src), str(out), method, options, src.stat().st_size, out.stat().st_size,
                    op_histogram(out), op_histogram(executed), fallback_ops(executed) if method == "static" else {},
                    notes=[f"onnxruntime.quantization: {m}" for m in dict.fromkeys(logs) if "performance" not in m],
                    seconds=time.perf_counter() - t0)
    if len(fp32.inputs) > 1:
        r.notes.append(f"fidelity not measured: evaluate() takes one-input models, {fp32.name} has {len(fp32.inputs)}")
    else:
        x_eval, y_eval, name = _eval_set(eval_data, calibration_data, fp32)
        ev = evaluate(out, (x_eval, y_eval), reference=fp32)
        r.fidelity = {**ev.agreement, "dataset": name, "n": ev.n}
    if r.fidelity and y_eval is not None:
        r.accuracy = {"dataset": name, "n": ev.n, "fp32": ev.reference_accuracy["top1"],
                      "quantized": ev.accuracy["top1"],
                      "delta_points": 100 * (ev.accuracy["top1"] - ev.reference_accuracy["top1"])}
    if measure:
        r.latency = _latency(src, out, rounds, min_s)
    r.warnings = _traps(r) + [f"onnxruntime.quantization: {m}" for m in dict.fromkeys(logs) if "performance" in m]
    for w in r.warnings:
        warnings.warn(w, QuantizationWarning, stacklevel=2)
    return r


def _executed_or_explain(out: Path, method: str, weight_type: str):
    """The graph ONNX Runtime runs for ``out``; a missing kernel becomes an error that says what to do."""
    try:
        return executed_graph(out)
    except Exception as exc:
        found = re.search(r"Could not find an implementation for (\w+)", str(exc))
        if not found:
            raise
        import onnxruntime as ort

        hint = ("quantize_dynamic with int8 weights turns Conv into ConvInteger, which older onnxruntime CPU "
                "builds (1.23, the newest for Python 3.10) cannot run: use weight_type='uint8' "
                "(--weight-type uint8), static quantization, or a newer onnxruntime"
                if method == "dynamic" and found[1] == "ConvInteger" and weight_type == "int8"
                else "try another weight_type/activation_type, or a newer onnxruntime")
        raise QuantizationError(f"{out} was written, but this onnxruntime ({ort.__version__}) has no CPU kernel "
                                f"for its {found[1]} nodes: {hint}") from None


def _latency(src: Path, out: Path, rounds: int, min_s: float) -> dict[str, Any]:
    """p50(quantized) / p50(fp32) at 1 thread, per interleaved round, summarised."""
    from ..perf.verdict import missing_sensors, verdict

    p50s, blocks = interleaved_p50({"fp32": src, "quantized": out}, rounds=rounds, min_s=min_s)
    ratios = np.array(p50s["quantized"]) / np.array(p50s["fp32"])
    return {"ratio": float(np.median(ratios)), "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max()),
            "per_round": ratios.tolist(), "fp32_p50_ms": float(np.median(p50s["fp32"])),
            "quant_p50_ms": float(np.median(p50s["quantized"])), "threads": 1, "rounds": rounds,
            "suspect_blocks": sum(bool(b.get("is_suspect")) for b in blocks), "blocks": len(blocks),
            "conditions": verdict(blocks), "missing_sensors": missing_sensors(blocks)}


def _eval_set(eval_data: Any, calibration_data: Any, model) -> tuple[np.ndarray, np.ndarray | None, str]:
    """A fixed evaluation set: ``eval_data``; else digits' test split for digits-shaped models (the
    calibration used the train split); else the calibration data (fidelity, not accuracy)."""
    from .evaluation import load_dataset

    if eval_data is None and not hasattr(calibration_data, "get_next"):
        eval_data = "digits" if tuple(model.inputs[0].shape[1:]) == (1, 8, 8) else calibration_data
    try:
        return load_dataset(default_data(model) if eval_data is None else eval_data, model, split="test")
    except QuantizationError:  # no data at all: fixed random inputs still measure fidelity
        shape = [d if isinstance(d, int) else 8 for d in model.inputs[0].shape]
        return np.random.default_rng(0).standard_normal(shape).astype(np.float32), None, f"random normal {tuple(shape)}"


def pareto(results: Sequence[QuantResult], out: str | os.PathLike = "pareto.png") -> Path:
    """Plot accuracy (or top-1 agreement) against latency ratio, marker area = file size, with the
    fp32 original as a reference point and the Pareto front (no other variant is both faster and
    more accurate) as a line. Needs measured results (``measure=True``)."""
    from .._extras import require

    require("matplotlib", extra="lab", purpose="the Pareto plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    missing = [r.label for r in results if not r.latency]
    if missing or not results:
        raise QuantizationError(f"pareto() needs latency: quantize(..., measure=True); "
                                f"not measured: {missing or 'no results'}")
    first = results[0]
    pts = [("fp32", 1.0, first.accuracy.get("fp32", 1.0), first.size_before)]  # fp32 agrees with itself: 1.0
    pts += [(r.label, r.latency["ratio"], r.accuracy.get("quantized", r.fidelity.get("top1_agreement")), r.size_after)
            for r in results]
    # the front: points no other point beats on both latency (lower) and accuracy (higher)
    front = sorted((p for p in pts if not any(q[1] <= p[1] and q[2] >= p[2] and q != p for q in pts)),
                   key=lambda p: p[1])
    # a Figure on the Agg canvas, not pyplot: no global backend switch under a student's notebook
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    biggest = max(p[3] for p in pts)
    ax.scatter([p[1] for p in pts], [p[2] for p in pts], s=[40 + 400 * p[3] / biggest for p in pts], alpha=0.6,
               c=["gray"] + ["tab:blue"] * len(results))
    ax.plot([p[1] for p in front], [p[2] for p in front], "--", color="tab:red", label="Pareto front")
    for i, (label, x, y, size) in enumerate(pts):  # alternate label offsets: variants often sit close
        ax.annotate(f"{label}\n{_size(size)}", (x, y), fontsize=7, xytext=(5, 6 if i % 2 else -18),
                    textcoords="offset points")
    ax.set_xscale("log")  # ratios: 0.5x and 2x sit equally far from 1
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.25, y=0.2)  # room for the labels
    ax.axvline(1.0, color="gray", lw=0.5)
    ax.set_xlabel("latency / fp32 latency (1 thread, log scale; left is faster)")
    ax.set_ylabel("top-1 accuracy" if "quantized" in first.accuracy else "top-1 agreement with fp32")
    ax.set_title(f"{first.model}: quantization variants (marker area = file size)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return Path(out)
