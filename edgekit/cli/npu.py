"""``edgekit npu-check MODEL --soc 57``: will this model run on a Snapdragon NPU? (registered by :mod:`edgekit.cli.main`)

``--calibrate digits|random`` first prepares a float model the way the report's hints say:
dynamic dimensions fixed to 1, then QDQ-quantized (uint8 activations, int8 per-channel weights).

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="edgekit")
>>> register(parser.add_subparsers())
>>> parser.parse_args(["npu-check", "digits-cnn", "--soc", "57"]).soc
'57'
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

QDQ_SETTINGS = "QDQ, uint8 activations, int8 symmetric per-channel weights"


def _fix_dims(src: Path, dst: Path) -> list[str]:
    """Write ``src`` with every dynamic input dimension set to 1; return what was fixed."""
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    model = onnx.load(str(src))
    fixed = []
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                fixed.append(f"{value.name}:{dim.dim_param}")
                make_dim_param_fixed(model.graph, dim.dim_param, 1)
            elif not dim.HasField("dim_value"):  # an unnamed dynamic dimension
                fixed.append(f"{value.name}:?")
                dim.dim_value = 1
    fix_output_shapes(model)
    onnx.save(model, str(dst))
    return fixed


def _quantize_qdq(src: Path, dst: Path, calibration: str = "digits", samples: int = 64) -> str:
    """QDQ-quantize a float model with a static shape; return a one-line description.

    Private on purpose: ``edgekit.deploy.quantization`` (in progress) will be the shared way to do this.
    """
    import numpy as np
    from onnxruntime import InferenceSession
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from .._errors import InputError

    inp = InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0]
    if calibration == "digits":
        from ..runtime.datasets import digits

        if list(inp.shape[1:]) != [1, 8, 8]:
            raise InputError(f"--calibrate digits needs an input of shape [1,1,8,8], got {inp.shape}: "
                             "use --calibrate random")
        data = digits(split="train")[0][:samples]
    elif calibration == "random":
        samples = min(samples, 16)  # calibration runs the float model on CPU: keep big models quick
        data = np.random.default_rng(0).random((samples, *inp.shape[1:])).astype(np.float32)
    else:
        raise InputError(f"--calibrate takes digits or random, got {calibration!r}")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{inp.name: x[None]} for x in data])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return f"quantized ({QDQ_SETTINGS}; calibrated on {len(data)} {calibration} inputs) -> {dst}"


def _prepare(model: str, calibration: str, out_dir: Path) -> tuple[str, list[str]]:
    """Fix dynamic dims and quantize a float model; a QDQ model is only shape-fixed."""
    from ..runtime.zoo import resolve
    from ..deploy.npu import graph_facts

    src = resolve(model)[0]
    facts, notes = graph_facts(src), []
    if facts["dynamic"]:
        fixed_path = out_dir / f"{src.stem}_fixed.onnx"
        notes.append(f"fixed dynamic dimension(s) {', '.join(_fix_dims(src, fixed_path))} to 1 -> {fixed_path}")
        src = fixed_path
    if facts["quantized"]:
        notes.append("already quantized: --calibrate did not quantize it again")
        return str(src), notes
    dst = out_dir / f"{src.stem.removesuffix('_fixed')}_qdq.onnx"
    logger = logging.getLogger()  # quantize_static warns "consider pre-processing" on the root logger
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        notes.append(_quantize_qdq(src, dst, calibration))
    finally:
        logger.setLevel(level)
    return str(dst), notes


def cmd_npu_check(args) -> int:
    from rich.console import Console

    from ..deploy.npu import npu_check
    from ..runtime.qnn import qnn_devices

    qnn_devices()  # fail on a missing extra before spending time on quantization
    console = Console()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.compile or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        model, notes = _prepare(args.model, args.calibrate, out_dir) if args.calibrate else (args.model, [])
        report = npu_check(model, args.soc, samples=args.samples, data=args.data, compile_dir=args.compile,
                           offload_io_quantization=not args.io_on_npu)
    report.prepared = notes
    report.emulator_time["npu_check_total_s"] = time.perf_counter() - start
    for note in notes:
        console.print(f"prepared: {note}")
    console.print(report_table(report))
    for line in report.summary()[2:]:
        console.print(line, highlight=False)
    console.print(f"{report.emulator_time['label']}: npu-check took {report.emulator_time['npu_check_total_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1, default=str))
        console.print(f"wrote {args.json}")
    return 0 if report.status == "full" else 1


def report_table(report):
    """A rich table of an :class:`~edgekit.deploy.npu.NpuReport`: nodes per op type, and why not QNN."""
    from rich.table import Table

    table = Table(title=f"{Path(report.model).name} on {report.soc}: {report.verdict}")
    for col, justify in (("op", "left"), ("on QNN", "right"), ("on CPU", "right"), ("why not QNN", "left")):
        table.add_column(col, justify=justify)
    for op, on_qnn, on_cpu, why in report.by_op():
        cpu = f"[red]{on_cpu}[/]" if on_cpu and "by design" not in why else str(on_cpu)
        table.add_row(op, str(on_qnn), cpu, why)
    return table


def register(sub) -> None:
    s = sub.add_parser("npu-check", help="which nodes would run on a Snapdragon NPU (QNN HTP emulator), and why not")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("--soc", required=True, help="chip: a soc_model id (57), part number (SM8650) or name ('8 Gen 3'); "
                   "edgekit.runtime.qnn.SOCS lists the known ones")
    s.add_argument("--compile", metavar="OUT_DIR", help="also write a compiled context model (*_ctx.onnx + .bin) for the chip")
    s.add_argument("--json", metavar="FILE", help="write the report as JSON")
    s.add_argument("--calibrate", choices=["digits", "random"],
                   help="first fix dynamic dims to 1 and QDQ-quantize a float model with this calibration data")
    s.add_argument("--samples", type=int, default=8, help="inputs compared with the CPU EP (default 8)")
    s.add_argument("--data", choices=["auto", "digits", "random"], default="auto", help="inputs for the comparison")
    s.add_argument("--io-on-npu", action="store_true", help="QNN also takes the graph input Quantize / output Dequantize")
    s.epilog = "exit status: 0 fully offloaded, 1 partly or not offloaded, 2 error (e.g. the qnn extra is missing)"
    s.set_defaults(func=cmd_npu_check)
