"""``edgekit npu-check MODEL --soc 57``: will this model run on a Snapdragon NPU? (registered by :mod:`edgekit.cli.main`)

``--calibrate digits|random`` first prepares a float model the way the report's hints say
(:func:`edgekit.deploy.qdq.prepare_for_npu`): dynamic dimensions fixed to 1, then QDQ-quantized
(uint8 activations, int8 per-channel weights) with ONNX Runtime's QNN helpers.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="edgekit")
>>> register(parser.add_subparsers())
>>> parser.parse_args(["npu-check", "digits-cnn", "--soc", "57"]).soc
'57'
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path


def cmd_npu_check(args) -> int:
    from rich.console import Console

    from ..deploy.npu import npu_check
    from ..deploy.qdq import prepare_for_npu
    from ..runtime.qnn import qnn_devices

    qnn_devices()  # fail on a missing extra before spending time on quantization
    console = Console()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.compile or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        model, notes = prepare_for_npu(args.model, args.calibrate, out_dir) if args.calibrate else (args.model, [])
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
