"""NPU readiness: which nodes of a model a Snapdragon NPU (Hexagon HTP) would run, and why not.

``npu_check`` compiles a model for one Snapdragon chip with Qualcomm's QNN execution provider
(through :mod:`edgekit.runtime.qnn`; the ``qnn`` extra's Windows / Linux x86_64 wheel carries the HTP
*emulator*), records which provider got each node and why QNN refused the rest, compares outputs
with the CPU execution provider, and gives hints. The emulator shows placement and accuracy,
never device latency.

>>> report = npu_check("digits-cnn", soc=57)  # doctest: +SKIP
>>> report.verdict                             # doctest: +SKIP
'not offloaded (0 of 9 nodes on QNN)'
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._errors import InputError, NpuError
from ..runtime.qnn import (EP, REPLACEMENTS, SOCS, Soc, native_output, qnn_module, qnn_devices, qnn_session, qnn_session_options,
                  resolve_soc)

TIME_LABEL = "emulator time (not device latency)"


@dataclass
class NodePlacement:
    """One node of the graph ONNX Runtime runs (after its optimizations and layout changes)."""

    name: str
    op_type: str
    domain: str
    ep: str
    reason: str = ""  # why QNN did not take it; empty on QNN


@dataclass
class Agreement:
    """QNN outputs against the CPU EP's on the same inputs."""

    samples: int
    data: str
    max_abs_diff: float
    output_step: float | None = None  # the output's quantization step, for QDQ models
    top1_agreement: float | None = None  # classifiers (one [N, K] output) only


@dataclass
class NpuReport:
    """What ``npu_check`` found: ``str()`` is a compact table, ``to_dict()`` the JSON."""

    model: str
    soc: Soc
    compiled_for_soc: int | None  # what the EP's op trace says it compiled for
    status: str  # "full" | "partial" | "none"
    verdict: str
    nodes: list[NodePlacement]
    agreement: Agreement | None
    hints: list[str]
    emulator_time: dict
    compiled: dict | None = None
    errors: list[str] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    prepared: list[str] = field(default_factory=list)  # what was done to the model first (CLI)

    def to_dict(self) -> dict:
        return {"schema": "edgekit.npu/1", **asdict(self)}

    def by_op(self) -> list[tuple[str, int, int, str]]:
        """``(op_type, nodes on QNN, nodes on CPU, reasons)`` per op type, in graph order."""
        qnn, cpu, why = Counter(), Counter(), {}
        for n in self.nodes:
            (qnn if n.ep == EP else cpu)[n.op_type] += 1
            why.setdefault(n.op_type, {})[n.reason] = None
        return [(op, qnn[op], cpu[op], "; ".join(r for r in why[op] if r)) for op in why]

    def summary(self) -> list[str]:
        lines = [f"npu-check {Path(self.model).name} for {self.soc}", f"verdict: {self.verdict}"]
        if a := self.agreement:
            steps = f" ({a.max_abs_diff / a.output_step:.2f} quantization steps)" if a.output_step else ""
            top1 = f", top-1 agreement {a.top1_agreement:.0%}" if a.top1_agreement is not None else ""
            lines.append(f"outputs vs CPU EP on {a.samples} {a.data} inputs: "
                         f"max |diff| {a.max_abs_diff:.4g}{steps}{top1}")
        t = self.emulator_time
        per = f", {t['inference_median_ms']:.1f} ms per inference" if t.get("inference_median_ms") else ""
        lines.append(f"{t['label']}: session {t['session_create_s']:.2f} s{per}")
        if self.compiled:
            lines.append(f"compiled: {self.compiled['onnx'] or '-'} ({self.compiled['status']})")
        return lines + [f"error: {e}" for e in self.errors] + [f"hint: {h}" for h in self.hints]

    def __str__(self) -> str:
        rows = [f"  {op:<18} QNN {q:>3}  CPU {c:>3}  {why}".rstrip() for op, q, c, why in self.by_op()]
        return "\n".join([*self.summary()[:2], *rows, *self.summary()[2:]])


def npu_check(model: str | os.PathLike, soc: int | str | Soc = 57, *, samples: int = 8, data: str = "auto",
              compile_dir: str | os.PathLike | None = None, offload_io_quantization: bool = True) -> NpuReport:
    """Place ``model`` (a path or zoo name) on QNN/HTP for chip ``soc`` and report.

    ``samples`` inputs (``data``: ``"digits"`` test images, ``"random"`` uniform [0, 1), or
    ``"auto"``: digits for a [1,1,8,8] input) run on QNN and on the CPU EP. ``compile_dir``
    also writes a context model (``*_ctx.onnx`` + ``.bin``) for the chip and runs it.
    ``offload_io_quantization`` is the EP's ``offload_graph_io_quantization`` (on by default:
    the graph input's QuantizeLinear and output's DequantizeLinear stay on the CPU).
    """
    import onnxruntime as ort

    from ..runtime.zoo import resolve

    path, chip = resolve(model)[0], resolve_soc(soc)
    devices, facts = qnn_devices(), graph_facts(path)
    config, ctx = {}, None
    if compile_dir is not None:
        ctx = Path(compile_dir) / f"{path.stem}_soc{chip.id}_ctx.onnx"
        ctx.parent.mkdir(parents=True, exist_ok=True)
        for old in [ctx, *ctx.parent.glob(f"{ctx.stem}*.bin")]:
            old.unlink(missing_ok=True)  # ONNX Runtime refuses to overwrite a context model
        config = {"ep.context_enable": "1", "ep.context_file_path": str(ctx)}
    log: list[str] = []
    with tempfile.TemporaryDirectory() as trace_dir:
        # Without framework_op_trace_dir the trace lands in the current directory (qnn_op_trace.json).
        options = {"enable_framework_op_trace": "1", "framework_op_trace_dir": trace_dir,
                   "offload_graph_io_quantization": "1" if offload_io_quantization else "0"}
        so = qnn_session_options(chip, options=options, config=config)
        so.log_severity_level = 2  # warnings and errors: they explain a backend that failed to start
        start = time.perf_counter()
        try:
            with native_output(log):
                session = ort.InferenceSession(str(path), sess_options=so, enable_fallback=0)
        except Exception as exc:
            raise NpuError(f"the QNN EP could not build a session for {path.name} on {chip}: "
                           f"{str(exc).splitlines()[0][:300]}. Try a chip from {', '.join(map(str, SOCS))}") from None
        create_s = time.perf_counter() - start
        trace = next((json.loads(p.read_text()) for p in Path(trace_dir).glob("*.json")), {})
    nodes = _placements(session, trace)
    errors = list(dict.fromkeys(line.split("] ", 1)[-1] for line in log if "[E:" in line))
    on_qnn, total = sum(n.ep == EP for n in nodes), len(nodes)
    if on_qnn == 0:
        status, verdict = "none", f"not offloaded (0 of {total} nodes on QNN)"
    elif all(n.ep == EP or "by design" in n.reason for n in nodes):
        io = "; graph input quantize / output dequantize on CPU by design" if on_qnn < total else ""
        status, verdict = "full", f"fully offloaded ({on_qnn} of {total} nodes on QNN{io})"
    else:
        status, verdict = "partial", f"partly offloaded ({on_qnn} of {total} nodes on QNN)"
    feeds, label = _feeds(session, samples, data)
    agreement, outs, run_ms = _agreement(path, session, feeds, facts, label) if feeds else (None, [], [])
    emulated = all(d.device.type != ort.OrtHardwareDeviceType.NPU for d in devices)
    timing = {"label": TIME_LABEL if emulated else "on-device time (includes Python overhead)",
              "session_create_s": create_s, "inference_median_ms": float(np.median(run_ms)) if run_ms else None}
    qnn = qnn_module()
    env = {"onnxruntime": ort.__version__, "onnxruntime_qnn": qnn.__version__,
           "qnn_sdk": getattr(qnn.build_and_package_info, "qnn_version", "?"), "platform": platform.platform(),
           "device": "HTP emulator on the host CPU" if emulated else "NPU"}
    target = (trace.get("soc_traces") or [{}])[0].get("compilation_target", {}).get("soc_model")
    hints = _hints(path, facts, nodes, errors, agreement if on_qnn else None)
    compiled = _run_compiled(ctx, chip, feeds, outs) if ctx else None
    return NpuReport(str(path), chip, target, status, verdict, nodes, agreement, hints, timing, compiled, errors, env)


def _placements(session, trace: dict) -> list[NodePlacement]:
    """Join ORT's node-to-EP assignment with the op trace's reasons (by name, else by op type)."""
    named, unnamed = {}, {}
    for u in trace.get("unsupported_nodes", []):
        reason = re.sub(r"\.\s*\S+ node `.*`.*$", "", u["reason"]).rstrip(".")
        if "graph input" in reason or "graph output" in reason:
            reason += " (by design: offload_graph_io_quantization)"
        if u["node_name"]:
            named[u["node_name"]] = reason
        else:
            unnamed.setdefault(u["op_type"], []).append(reason)
    nodes = []
    for sub in session.get_provider_graph_assignment_info():
        for n in sub.get_nodes():
            why = ""
            if sub.ep_name != EP:
                pending = unnamed.get(n.op_type) if not n.name else None
                why = named.get(n.name) or (pending.pop(0) if pending else "") or \
                    "not offered to QNN (ONNX Runtime kept it on CPU, or the EP failed: see errors)"
            nodes.append(NodePlacement(n.name, n.op_type, n.domain, sub.ep_name, why))
    return nodes


def graph_facts(path: Path) -> dict:
    """Dynamic input dims, whether the model is quantized, and its output's quantization step."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name: i for i in m.graph.initializer}
    ops = {n.op_type for n in m.graph.node}
    dynamic = {i.name: [d.dim_param or "?" for d in i.type.tensor_type.shape.dim
                        if not d.HasField("dim_value")] for i in m.graph.input if i.name not in inits}
    last = next((n for n in m.graph.node if m.graph.output[0].name in n.output), None)
    step = None
    if last is not None and last.op_type == "DequantizeLinear" and last.input[1] in inits:
        scale = numpy_helper.to_array(inits[last.input[1]])
        step = float(scale) if scale.size == 1 else None
    return {"dynamic": {k: v for k, v in dynamic.items() if v}, "output_step": step,
            "quantized": bool(ops & {"QuantizeLinear", "DequantizeLinear"}) or any(o.startswith("QLinear") for o in ops)}


def _feeds(session, samples: int, data: str) -> tuple[list[dict], str]:
    from ..runtime.model import ORT_TO_NUMPY

    inputs = session.get_inputs()
    shapes = [tuple(d if isinstance(d, int) and d > 0 else 1 for d in i.shape) for i in inputs]
    if data == "auto":
        data = "digits" if len(inputs) == 1 and shapes[0] == (1, 1, 8, 8) else "random"
    if data == "digits":
        from ..runtime.datasets import digits

        if shapes[0][1:] != (1, 8, 8):
            raise InputError(f"data='digits' needs an input of shape [1,1,8,8], got {list(shapes[0])}: "
                             "use data='random'")
        return [{inputs[0].name: x[None]} for x in digits(split="test")[0][:samples]], "digits test"
    if data != "random":
        raise InputError(f"data must be 'auto', 'digits' or 'random', got {data!r}")
    rng, dtypes = np.random.default_rng(0), [np.dtype(ORT_TO_NUMPY.get(i.type, np.float32)) for i in inputs]
    # integer inputs are taken to be uint8-like images (0..255); float ones uniform in [0, 1)
    draw = lambda t, s: rng.integers(0, 256, s).astype(t) if t.kind in "iu" else rng.random(s).astype(t)  # noqa: E731
    return [{i.name: draw(t, s) for i, t, s in zip(inputs, dtypes, shapes)} for _ in range(samples)], "random"


def _agreement(path: Path, session, feeds: list[dict], facts: dict, data: str):
    import onnxruntime as ort

    cpu = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # the oracle
    outs, run_ms, diff, same = [], [], 0.0, []
    for feed in feeds:
        start = time.perf_counter()
        got = session.run(None, feed)
        run_ms.append((time.perf_counter() - start) * 1e3)
        want = cpu.run(None, feed)
        outs.append(got)
        diff = max([diff] + [float(np.abs(g.astype(np.float64) - w).max()) for g, w in zip(got, want) if g.size])
        if len(got) == 1 and got[0].ndim == 2 and got[0].shape[1] > 1:
            same += list(got[0].argmax(1) == want[0].argmax(1))
    top1 = float(np.mean(same)) if same else None
    return Agreement(len(feeds), data, diff, facts["output_step"], top1), outs, run_ms


def _run_compiled(ctx: Path, chip: Soc, feeds: list[dict], outs: list) -> dict:
    """Load the context model the session wrote, run it on one input, compare with the session."""
    bins = sorted(str(p) for p in ctx.parent.glob(f"{ctx.stem}*.bin"))
    if not ctx.is_file():
        return {"onnx": None, "bins": bins, "status": "no context model was written"}
    try:
        with native_output([]):
            session = qnn_session(ctx, chip)
            # one input is enough to show it runs; each costs 0.5 s on a MobileNet in the emulator
            diffs = [float(np.abs(a - b).max()) for a, b in zip(session.run(None, feeds[0]), outs[0])] if feeds else []
    except Exception as exc:
        return {"onnx": str(ctx), "bins": bins, "status": f"does not load: {str(exc).splitlines()[0][:200]}"}
    size, diff = sum(Path(p).stat().st_size for p in [ctx, *bins]), max(diffs) if diffs else None
    ran = f"runs in the emulator, max |diff| vs the session {diff:.3g}" if diffs else "not run (samples=0)"
    return {"onnx": str(ctx), "bins": bins, "bytes": size, "max_abs_diff_vs_session": diff,
            "status": f"loads, {ran}; {size / 1e6:.2f} MB"}


def _hints(path: Path, facts: dict, nodes: list[NodePlacement], errors: list[str],
           agreement: Agreement | None) -> list[str]:
    hints = []
    for name, dims in facts["dynamic"].items():
        how = (f"--dim_param {dims[0]} --dim_value 1" if dims[0] != "?"
               else f"--input_name {name} --input_shape 1,...")
        hints.append(f"input {name!r} has dynamic dimension(s) {dims}: QNN needs static shapes ('Cannot get shape') "
                     f"and leaves those nodes on CPU. Fix the shape: python -m onnxruntime.tools.make_dynamic_shape_fixed "
                     f"{how} {path.name} {path.stem}_fixed.onnx")
    if not facts["quantized"]:
        seen = f" (here max |diff| {agreement.max_abs_diff:.3g} vs CPU)" if agreement else ""
        hints.append(f"float model: HTP runs fp32 at fp16 precision{seen} and is built for integer math: quantize to "
                     "QDQ (uint8 activations, int8 per-channel weights) with onnxruntime.quantization."
                     "quantize_static(..., quant_format=QuantFormat.QDQ, per_channel=True), "
                     "or: edgekit npu-check MODEL --calibrate digits|random")
    for op in sorted({n.op_type for n in nodes if "not supported by QNN" in n.reason}):
        hints.append(f"{op} has no QNN kernel and splits the graph between NPU and CPU: "
                     + REPLACEMENTS.get(op, "replace it with supported ops, or move it after the model"))
    if any("by design" in n.reason for n in nodes):
        hints.append("the graph input QuantizeLinear / output DequantizeLinear run on CPU by the EP's default "
                     "(offload_graph_io_quantization=1); offload_io_quantization=False (--io-on-npu) moves them to the NPU")
    if errors and not any(n.ep == EP for n in nodes):
        hints.append("the QNN backend failed (errors above): this emulator may not support the chip; "
                     f"try one of {', '.join(map(str, SOCS))}")
    return hints
