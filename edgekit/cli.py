"""The ``edgekit`` command line. Each subcommand imports what it needs when it runs, so
``edgekit --help`` stays instant.

    edgekit tour                       device check, inference, a short benchmark, a plot
    edgekit doctor [--json]            is this installation healthy? what to fix
    edgekit models list|info|build|verify
    edgekit info MODEL                 opset, parameters, op histogram, inputs/outputs
    edgekit bench MODEL [--threads 1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._errors import EdgekitError


def _console():
    from rich.console import Console

    return Console()


def cmd_doctor(args) -> int:
    from .doctor import run_checks

    report = run_checks()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        report.render(_console())
    return 0 if report.ok else 1


def cmd_models(args) -> int:
    from rich.table import Table

    from . import zoo

    console = _console()
    if args.action == "list":
        table = Table(title=f"edgekit zoo ({zoo.models_dir()})")
        for col in ("name", "task", "licence", "size", "present", "description"):
            table.add_column(col)
        for name, e in zoo.manifest().items():
            present = zoo.location(name).is_file()
            state = "committed" if e.committed else ("built" if present else "build on demand")
            table.add_row(name, e.task, e.licence, f"{e.bytes / 1e6:.2f} MB", state, e.description)
        console.print(table)
        console.print(f"built models are cached in {zoo.cache_dir()}")
        return 0
    names = args.names or (zoo.names() if args.action == "verify" else [])
    if not names:
        raise SystemExit(f"edgekit models {args.action}: name a model ({', '.join(zoo.names())})")
    status = 0
    for name in names:
        if args.action == "info":
            console.print_json(json.dumps(zoo.describe(name), default=str))
        elif args.action == "build":
            res = zoo.build_model(name, Path(args.out) / zoo.entry(name).file if args.out else None)
            same = "identical to the manifest" if res.matches_manifest else "differs from the manifest sha256"
            console.print(f"built {name} -> {res.path}\n  sha256 {res.sha256} ({same})\n  report {res.report}")
            if not res.matches_manifest and zoo.entry(name).deterministic:
                status = 1
        else:
            res = zoo.verify(name, accuracy=True)
            mark = "[green]ok[/]" if res.ok else "[red]FAIL[/]"
            console.print(f"{mark}  {name}: {res.detail}")
            status |= 0 if res.ok else 1
    return status


def cmd_info(args) -> int:
    from .model import load

    info = load(args.model).info()
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        _console().print(info.table())
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,2,4, got {text!r}") from None


def cmd_bench(args) -> int:
    from .bench import benchmark

    results = []
    for threads in args.threads or [None]:
        r = benchmark(args.model, threads=threads, min_runs=args.min_runs, min_s=args.min_s, max_s=args.max_s)
        print(f"threads={threads or 'default'}  {r}")
        results.append(r.to_dict())
    if args.json:
        Path(args.json).write_text(json.dumps(results[0] if len(results) == 1 else results, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_tour(args) -> int:
    from .tour import tour

    return tour(Path(args.out), quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="edgekit", description="Offline Edge-AI lab kit on ONNX Runtime.")
    p.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("tour", help="device check, inference on bundled images, a short benchmark, a plot")
    s.add_argument("--out", default="edgekit-tour", help="folder for the plot and JSON (default: ./edgekit-tour)")
    s.add_argument("--quick", action="store_true", help="shorter benchmark (for tests)")
    s.set_defaults(func=cmd_tour)

    s = sub.add_parser("doctor", help="check the installation and show the device")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("models", help="the offline model zoo")
    s.add_argument("action", choices=["list", "info", "build", "verify"])
    s.add_argument("names", nargs="*", help="zoo names (verify: all when omitted)")
    s.add_argument("--out", help="build: write into this folder instead of the cache")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("info", help="what is inside a model")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("bench", help="benchmark a model (latency percentiles, throughput)")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("--threads", type=_int_list, help="intra-op threads; a list sweeps: 1,2,4")
    s.add_argument("--min-runs", type=int, default=100)
    s.add_argument("--min-s", type=float, default=3.0)
    s.add_argument("--max-s", type=float, default=15.0)
    s.add_argument("--json", help="write the result(s) to this file")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgekitError as exc:
        # Errors that teach are for people: one line, no traceback from deep inside a library.
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
