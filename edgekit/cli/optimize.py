"""``edgekit eval``, ``edgekit quantize`` and ``edgekit optimize`` (registered by :mod:`edgekit.cli.main`).

    edgekit eval digits-cnn.uint8-qdq.onnx digits --reference digits-cnn
    edgekit quantize mobilenetv2-224 --out mnv2-int8.onnx [--method static|dynamic|fp16] [--no-per-channel]
    edgekit optimize mobilenetv2-224 --out optimized/
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path


def cmd_eval(args) -> int:
    from ..deploy.evaluation import evaluate

    result = evaluate(args.model, args.dataset, reference=args.reference, batch_size=args.batch_size)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result)
    return 0


def cmd_quantize(args) -> int:
    from ..deploy.quantization import QuantizationWarning, quantize

    with warnings.catch_warnings():  # the report prints every warning already
        warnings.simplefilter("ignore", QuantizationWarning)
        result = quantize(args.model, args.out, method=args.method, format=args.format, per_channel=args.per_channel,
                          calibration=args.calibration, calibration_data=args.calibration_data,
                          activation_type=args.activation_type, weight_type=args.weight_type,
                          reduce_range=args.reduce_range, preprocess=args.preprocess, measure=args.measure,
                          rounds=args.rounds, eval_data=args.eval_data)
    print(result)
    _say_missing((result.latency or {}).get("missing_sensors"))
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_optimize(args) -> int:
    from ..deploy.optimization import optimize

    result = optimize(args.model, args.out, levels=args.levels, measure=args.measure, threads=args.threads,
                      rounds=args.rounds)
    print(result)
    _say_missing(result.missing_sensors)
    if args.out:
        print(f"optimized models in {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"wrote {args.json}")
    return 0


def _say_missing(names) -> None:
    from ..perf.verdict import sensors_line

    line = sensors_line(names or [])
    if line:
        print(line)


def _levels(text: str) -> list[str]:
    levels = [t.strip() for t in text.split(",") if t.strip()]
    if not levels or any(lv not in LEVELS for lv in levels):
        raise argparse.ArgumentTypeError(f"levels are a comma list of {', '.join(LEVELS)}; got {text!r}")
    return levels


# choices spelled out here so that `edgekit --help` imports no numpy (tests check they match quantize.py's)
METHODS, FORMATS = ("static", "dynamic", "fp16"), ("qdq", "qoperator")
CALIBRATIONS = ("minmax", "entropy", "percentile", "distribution")
TYPES = ("int8", "uint8", "int16", "uint16", "int4", "uint4")
LEVELS = ("disable", "basic", "extended", "layout", "all")


def register(sub) -> None:
    s = sub.add_parser("eval", help="top-1/top-5 accuracy on a dataset, and agreement with a reference model")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("dataset", help="digits, digits:train, an .npz with arrays x (and y), or a folder of images")
    s.add_argument("--reference", help="a model to compare outputs with (e.g. the fp32 original)")
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("quantize", help="quantize with onnxruntime.quantization; report size, speed, accuracy, traps")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("--out", required=True, help="where to write the quantized .onnx")
    s.add_argument("--method", choices=METHODS, default="static")
    s.add_argument("--format", choices=FORMATS, default="qdq", help="static only: QDQ pairs or QLinear* operators")
    s.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=True,
                   help="per-channel weight scales")
    s.add_argument("--calibration", choices=CALIBRATIONS, default="minmax", help="static only: CalibrationMethod")
    s.add_argument("--calibration-data",
                   help="digits, a folder of images, an .npy/.npz file, or a zoo name (its preprocess)")
    s.add_argument("--eval-data",
                   help="held-out data for accuracy/fidelity (default: digits test split, else the calibration data)")
    s.add_argument("--activation-type", choices=TYPES, default="uint8")
    s.add_argument("--weight-type", choices=TYPES, default="int8")
    s.add_argument("--reduce-range", action="store_true", help="7-bit weights (for CPUs without VNNI, saturation)")
    s.add_argument("--preprocess", action=argparse.BooleanOptionalAction, default=True,
                   help="run quant_pre_process first")
    s.add_argument("--measure", action=argparse.BooleanOptionalAction, default=True, help="latency vs fp32, 1 thread")
    s.add_argument("--rounds", type=int, default=5, help="interleaved fp32/quantized rounds")
    s.add_argument("--json", help="write the report to this file")
    s.set_defaults(func=cmd_quantize)

    s = sub.add_parser("optimize", help="the graph ONNX Runtime runs at each optimization level: nodes, ops, latency")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("--out", help="folder for the optimized models (default: not kept)")
    s.add_argument("--levels", type=_levels, default=["disable", "basic", "extended", "all"])
    s.add_argument("--measure", action=argparse.BooleanOptionalAction, default=True, help="latency per level")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--json", help="write the report to this file")
    s.set_defaults(func=cmd_optimize)
