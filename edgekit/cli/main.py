"""The ``edgekit`` command line. Each subcommand imports what it needs when it runs, so
``edgekit --help`` stays instant.

    edgekit tour                       device check, inference, a short benchmark, a plot
    edgekit doctor [--json]            is this installation healthy? what to fix
    edgekit models list|info|build|verify
    edgekit info MODEL                 opset, parameters, op histogram, inputs/outputs
    edgekit bench MODEL [--threads 1,2] [--json out.json]
    edgekit run MODEL IMAGE            classify or find faces in one photo with a zoo model (--out draws it)
    edgekit npu-check MODEL --soc 57   which nodes a Snapdragon NPU would run (QNN HTP emulator)
    edgekit lab release LAB --out DIR  edgekit check NOTEBOOK  edgekit grade LAB SUBMISSIONS --out OUT
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .._errors import EdgekitError


def _console():
    from rich.console import Console

    return Console()


def cmd_doctor(args) -> int:
    from ..runtime.doctor import Check, run_checks

    report = run_checks()
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
    from ..runtime.model import load

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


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _spin_list(text: str) -> list[bool]:
    values = {"on": True, "off": False}
    try:
        return [values[t] for t in _str_list(text)]
    except KeyError:
        raise argparse.ArgumentTypeError(f"--spin takes on, off or on,off; got {text!r}") from None


def cmd_bench(args) -> int:
    import itertools

    from ..perf.bench import benchmark

    if args.ab:
        return _bench_ab(args)
    if args.suite:
        return _bench_suite(args)
    if args.scheduler or args.on:
        raise SystemExit("edgekit bench: --scheduler and --on run a suite on a fleet of boards: add --suite FILE "
                         "(e.g. benchmarks/suites/quick.json)")
    if not args.model:
        raise SystemExit("edgekit bench: name a MODEL (zoo name or .onnx path)")
    grid = list(itertools.product(args.threads or [None], args.optimization or ["all"], args.spin or [None],
                                  args.batch or [1], args.providers or ["cpu"]))
    results = []
    for threads, opt, spin, batch, prov in grid:
        r = benchmark(args.model, threads=threads, optimization=opt, spin_wait=spin, batch_size=batch,
                      providers=prov, mode=args.mode, concurrency=args.concurrency, sessions=args.sessions,
                      min_runs=args.min_runs, min_s=args.min_s, max_s=args.max_s, warmup_s=args.warmup_s,
                      progress=sys.stderr.isatty())
        results.append(r.to_dict())
        if not args.quiet:
            print(f"{r.config.label()}  {r}")
    if len(results) > 1 or args.table:
        from ..perf.export import results_table

        _console().print(results_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results[0] if len(results) == 1 else results, indent=1))
        print(f"wrote {args.json}")
    if args.csv:
        from ..perf.export import to_csv

        to_csv(results, args.csv)
        print(f"wrote {args.csv}")
    return 0


def _bench_suite(args) -> int:
    from ..perf.suite import run_suite

    out = Path(args.out or f"results-{Path(args.suite).stem}")
    if args.scheduler or args.on:  # a fleet of boards on dask.distributed (edgekit.perf.fleet)
        from ..perf.fleet import cli_run

        return cli_run(args.suite, out, args.scheduler, args.on, force=args.force)
    files = run_suite(args.suite, out, force=args.force,
                      on_result=lambda f, r: print(f"{f.name}: p50 {r['latency_ms']['p50']:.4f} ms"
                                                   + ("  SUSPECT" if r["suspect"].get("is_suspect") else "")))
    print(f"{len(files)} results in {out} (finished ones are kept; re-running skips them)")
    return 0


def _bench_ab(args) -> int:
    from ..perf.interleave import run_ab

    model = args.model
    if not model:
        raise SystemExit("edgekit bench --ab A B: name a MODEL too, e.g. edgekit bench digits-cnn --ab threads=1 threads=2")
    res = run_ab(model, args.ab[0], args.ab[1], rounds=args.rounds, block_s=args.min_s)
    print(f"A = {args.ab[0]}: p50 {res.a['latency_ms']['p50']:.4f} ms over {res.a['latency_ms']['n']} runs")
    print(f"B = {args.ab[1]}: p50 {res.b['latency_ms']['p50']:.4f} ms over {res.b['latency_ms']['n']} runs")
    print(f"order of blocks (one process each): {' '.join(res.order)}")
    print(res.comparison)
    if args.json:
        Path(args.json).write_text(json.dumps({"a": res.a, "b": res.b, "order": res.order,
                                               "comparison": res.comparison.to_dict()}, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_compare(args) -> int:
    from ..perf.comparison import comparison_table, compare_many, load_results

    results = load_results(args.results)
    if len(results) < 2:
        raise SystemExit("edgekit compare: give at least two results (files holding one result or a list)")
    comparisons = compare_many(results)
    _console().print(comparison_table(comparisons))
    for c in comparisons:
        print(c)
    if args.json:
        Path(args.json).write_text(json.dumps([c.to_dict() for c in comparisons], indent=1))
    return 0


def cmd_report(args) -> int:
    from ..perf.report import main as report_main

    return report_main(args.rest)


def cmd_profile(args) -> int:
    from ..perf.profiler import main as profile_main

    return profile_main(args.rest)


def cmd_tour(args) -> int:
    from .tour import tour

    return tour(Path(args.out), quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    p = argparse.ArgumentParser(prog="edgekit", description="Offline Edge-AI lab kit on ONNX Runtime.")
    p.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("tour", help="device check, inference on bundled images, a short benchmark, a plot")
    s.add_argument("--out", default="edgekit-tour", help="folder for the plot and JSON (default: ./edgekit-tour)")
    s.add_argument("--quick", action="store_true", help="shorter benchmark (for tests)")
    s.set_defaults(func=cmd_tour)

    s = sub.add_parser("doctor", help="check the installation and show the device")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--grading", action="store_true", help="also try each layer of the grading fence (Linux)")
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

    s = sub.add_parser("bench", help="benchmark a model: percentiles with CIs, throughput, memory, sampler")
    s.add_argument("model", nargs="?", help="zoo name or .onnx path")
    s.add_argument("--threads", type=_int_list, help="intra-op threads; a list sweeps: 1,2,4")
    s.add_argument("--optimization", type=_str_list, help="graph optimization level(s): disable,basic,extended,all")
    s.add_argument("--spin", type=_spin_list, help="intra-op spin-wait: on, off or on,off")
    s.add_argument("--batch", type=_int_list, help="batch size(s) for the dynamic batch axis")
    s.add_argument("--providers", type=_str_list, help="execution provider(s), e.g. cpu or auto")
    s.add_argument("--mode", choices=["latency", "throughput"], default="latency")
    s.add_argument("--concurrency", type=int, default=1, help="throughput mode: parallel callers")
    s.add_argument("--sessions", type=int, default=1, help="throughput mode: sessions shared by the callers")
    s.add_argument("--min-runs", type=int, default=100)
    s.add_argument("--min-s", type=float, default=3.0)
    s.add_argument("--max-s", type=float, default=15.0)
    s.add_argument("--warmup-s", type=float, default=0.5)
    s.add_argument("--ab", nargs=2, metavar=("CONFIG_A", "CONFIG_B"),
                   help="interleaved A/B in separate processes, e.g. --ab threads=1 threads=2")
    s.add_argument("--rounds", type=int, default=6, help="--ab: blocks per side")
    s.add_argument("--suite", help="run a suite file (benchmarks/suites/*.json), one result file per job")
    s.add_argument("--out", help="--suite: folder for the result files")
    s.add_argument("--force", action="store_true", help="--suite: redo results that already exist")
    s.add_argument("--scheduler", metavar="ADDRESS", help="--suite: run it on the boards of this dask cluster, e.g. tcp://HOST:8786 "
                                       "(dist extra); results go to OUT/<board>/")
    s.add_argument("--on", type=_str_list, metavar="LABELS", help="--scheduler: worker resource labels to run on, e.g. "
                                                "board-rpi5,board-jetson (default: every label)")
    s.add_argument("--json", help="write the result(s) to this file")
    s.add_argument("--csv", help="write one CSV row per result")
    s.add_argument("--table", action="store_true", help="print the summary table even for one result")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("compare", help="ratios of medians with bootstrap CIs and a verdict")
    s.add_argument("results", nargs="+", help="result JSON files (the first is the baseline)")
    s.add_argument("--json", help="write the comparisons to this file")
    s.set_defaults(func=cmd_compare)

    for name, helptext, func in (("report", "self-contained HTML report with plots (RESULT.json... -o report.html)", cmd_report),
                                 ("profile", "per-operator time from ONNX Runtime's profiler (MODEL [--runs N])", cmd_profile)):
        s = sub.add_parser(name, help=helptext, add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(func=func)

    for module in ("grading", "vision", "npu", "optimize", "video"):  # each adds its subcommands
        importlib.import_module(f".{module}", __package__).register(sub)
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
