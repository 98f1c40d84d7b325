"""``edgekit tour``, ``doctor``, ``models`` and ``info`` (registered by :mod:`edgekit.cli.main`)."""

from __future__ import annotations

import json
from pathlib import Path

from .._errors import ConfigError


def _console():
    from rich.console import Console

    return Console()


def cmd_tour(args) -> int:
    from .tour import tour

    return tour(Path(args.out), quick=args.quick)


def cmd_doctor(args) -> int:
    from ..runtime.doctor import Check, run_checks

    report = run_checks(labs=args.labs)
    if args.grading:  # each layer of the grading fence, tried for real
        from ..grading.fence_check import checks

        report.checks += [Check(*row) for row in checks()]
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        report.render(_console())
    return 0 if report.ok else 1


def cmd_models(args) -> int:
    from rich.table import Table

    from ..runtime import zoo

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
        raise ConfigError(f"edgekit models {args.action}: name a model ({', '.join(zoo.names())})")
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
    from ..runtime.model import load

    info = load(args.model).info()
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        _console().print(info.table())
    return 0


def register(sub) -> None:
    s = sub.add_parser("tour", help="device check, inference on bundled images, a short benchmark, a plot")
    s.add_argument("--out", default="edgekit-tour", help="folder for the plot and JSON (default: ./edgekit-tour)")
    s.add_argument("--quick", action="store_true", help="shorter benchmark (for tests)")
    s.set_defaults(func=cmd_tour)

    s = sub.add_parser("doctor", help="check the installation and show the device")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--grading", action="store_true", help="also try each layer of the grading fence (Linux)")
    s.add_argument("--labs", action="store_true", help="a package the labs need that is missing is a failure")
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
