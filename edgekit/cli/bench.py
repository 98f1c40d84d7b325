"""``edgekit bench``, ``compare``, ``report`` and ``profile`` (registered by :mod:`edgekit.cli.main`).

    edgekit bench digits-cnn --threads 1,2 --json sweep.json
    edgekit bench digits-cnn --ab threads=1 threads=2
    edgekit bench --suite benchmarks/suites/quick.json [--scheduler tcp://HOST:8786 --on board-rpi5]
    edgekit compare a.json b.json
    edgekit report a.json b.json -o report.html [--profile prof.json]
    edgekit profile digits-cnn --runs 20 --json prof.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .._errors import ConfigError
from ..perf.runs import BUDGET_S, FIRST_RUNS, TARGET_CI
from .argtypes import OPTIMIZATION_LEVELS, count, fraction, int_list, opt_list, seconds, spin_list, str_list

def _console():
    from rich.console import Console

    return Console()


def _say_missing(results) -> None:
    """Name the sensors this device lacks, once per command, beside the timings it printed."""
    from ..perf.verdict import sensors_note

    note = sensors_note(results)
    if note:
        print(note)


def cmd_bench(args) -> int:
    import itertools

    from ..perf.bench import benchmark

    if args.ab:
        return _bench_ab(args)
    if args.suite:
        return _bench_suite(args)
    if args.scheduler or args.on:
        raise ConfigError("edgekit bench: --scheduler and --on run a suite on a fleet of boards: add --suite FILE "
                          "(e.g. benchmarks/suites/quick.json)")
    if not args.model:
        raise ConfigError("edgekit bench: name a MODEL (zoo name or .onnx path), or give --suite FILE")
    grid = list(itertools.product(args.threads or [None], args.optimization or ["all"], args.spin or [None],
                                  args.batch or [1], args.providers or ["cpu"]))
    option_sets = [{"threads": threads, "optimization": opt, "spin_wait": spin, "batch_size": batch, "providers": prov,
                    "mode": args.mode, "concurrency": args.concurrency, "sessions": args.sessions,
                    "min_runs": args.min_runs, "min_s": _min_s(args), "max_s": args.max_s, "warmup_s": _warmup_s(args),
                    "timed": args.timed} for threads, opt, spin, batch, prov in grid]
    done = _run_done(args) if sys.stderr.isatty() else None
    if _repeats(args) and len(option_sets) > 1:  # a sweep: the configs' runs take turns (compare sees it)
        from ..perf.interleave import run_sweep

        repeat = REPEAT if args.repeat == AUTO else args.repeat
        measured = run_sweep(args.model, option_sets, repeat,
                             on_run=(lambda i, r: done(f"config {i + 1} of {len(option_sets)}", r)) if done else None)
    elif args.repeat == AUTO:
        from ..perf.runs import run_auto

        measured = [run_auto(args.model, **option_sets[0],
                             on_run=(lambda i, r: done(f"run {i}", r)) if done else None)]
    elif args.repeat > 1:
        from ..perf.runs import run_repeated

        measured = [run_repeated(args.model, args.repeat, **option_sets[0],
                                 on_run=(lambda i, r: done(f"run {i}/{args.repeat}", r)) if done else None)]
    else:  # --repeat 1: one run of each config, in this process
        measured = [benchmark(args.model, progress=sys.stderr.isatty(), **options) for options in option_sets]
    results = []
    for r in measured:
        results.append(r.to_dict())
        if not args.quiet:
            print(f"{r.config.label()}  {r}")
    if not args.quiet:
        _say_missing(results)
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


AUTO = "auto"  # the default --repeat: runs until the p50's CI is +-2% or 15 s are spent (edgekit.perf.runs.run_auto)
REPEAT = 5  # runs per config of a sweep under --repeat auto
MIN_S_PER_RUN = 0.5  # --min-s when runs are repeated and none is given; 3.0 for a single run
WARMUP_S_PER_RUN = 0.25  # --warmup-s when runs are repeated and none is given; 0.5 for a single run
# a repeated run costs ~0.55 s to start + 0.25 s warm-up + 0.5 s measured: ~11 runs fit 15 s on a 5 ms model.
# Shorter runs, more of them: on the development VM the run-to-run spread of p50 was the same for
# 0.5 s and 1.0 s runs (6.9% and 6.2%, 12 interleaved rounds: benchmarks/drift.py --lengths), so the
# CI narrows with the run count.


def _repeats(args) -> bool:
    return args.repeat == AUTO or args.repeat > 1


def _run_done(args):
    def show(what: str, result: dict) -> None:
        print(f"  {what} done: p50 {result['latency_ms']['p50']:.4g} ms", file=sys.stderr)
    return show


def _min_s(args) -> float:
    if args.min_s is not None:
        return args.min_s
    return MIN_S_PER_RUN if _repeats(args) else 3.0


def _warmup_s(args) -> float:
    if args.warmup_s is not None:
        return args.warmup_s
    return WARMUP_S_PER_RUN if _repeats(args) else 0.5


def _repeat_arg(text: str):
    """An argparse type: ``auto`` or a run count >= 1."""
    if text == AUTO:
        return AUTO
    try:
        return count(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}") from None


def _bench_suite(args) -> int:
    from ..perf.suite import load_suite, run_suite

    load_suite(args.suite)  # a missing or malformed suite fails before anything runs or a folder is made
    out = Path(args.out or f"results-{Path(args.suite).stem}")
    if args.scheduler or args.on:  # a fleet of boards on dask.distributed (edgekit.perf.fleet)
        return _bench_fleet(args.suite, out, args.scheduler, args.on, force=args.force)
    from ..perf.verdict import verdict

    seen: list[dict] = []

    def show(f, r) -> None:
        seen.append(r)
        print(f"{f.name}: p50 {r['latency_ms']['p50']:.4f} ms  [{verdict(r)}]")

    files = run_suite(args.suite, out, force=args.force, on_result=show)
    _say_missing(seen)
    print(f"{len(files)} results in {out} (finished ones are kept; re-running skips them)")
    return 0


def _bench_fleet(suite: str, out: Path, scheduler: str | None, on: list[str] | None, *, force: bool = False) -> int:
    """``edgekit bench --suite S --scheduler ADDR [--on LABELS]``: progress lines and a summary table."""
    from rich.table import Table

    from .._errors import FleetError
    from ..perf.fleet import Job, run_fleet

    if not scheduler:
        raise FleetError("--on picks boards of a dask cluster: add --scheduler tcp://HOST:8786 "
                         "(or leave out --on to run the suite on this machine)")
    console = _console()
    colours = {"done": "green", "skipped": "dim", "lost": "red", "error": "red", "not-run": "yellow"}
    t0 = time.perf_counter()

    from ..perf.verdict import verdict

    def show(job: Job) -> None:
        secs = f" ({job.seconds:.1f} s)" if job.seconds is not None else ""
        word = ""
        if job.status in ("done", "skipped") and Path(job.file).is_file():  # a finished benchmark: its conditions
            try:
                word = f"  [{verdict(json.loads(Path(job.file).read_text()))}]"
            except (OSError, ValueError):
                word = "  [unreadable result]"
        console.print(f"[{colours[job.status]}]{job.status:>7}[/]  {job.board:<16} {Path(job.file).name}"
                      f"{secs}  {job.message}{word}", highlight=False, soft_wrap=True, markup=False)

    run = run_fleet(suite, out, scheduler, on, force=force, on_event=show)
    table = Table(title=f"fleet run in {time.perf_counter() - t0:.1f} s -> {out}", title_justify="left")
    for col in ("board", "worker", "host", *colours):
        table.add_column(col)
    for b in run.boards:
        n = run.counts(b.folder)
        table.add_row(b.folder, b.worker, b.host, *(str(n.get(s, 0)) for s in colours))
    console.print(table)
    if not run.ok:
        console.print("some benchmarks did not finish (see fleet.json); run the same command again to retry them",
                      soft_wrap=True)
    return 0 if run.ok else 1


def _bench_ab(args) -> int:
    from ..perf.interleave import parse_config, run_ab

    configs = [parse_config(text) for text in args.ab]  # a typo fails here, before any block runs
    if not args.model and not all("model" in c for c in configs):
        raise ConfigError("edgekit bench --ab A B: name a MODEL too, e.g. edgekit bench digits-cnn --ab threads=1 threads=2 "
                          "(or a model on each side: --ab model=a.onnx model=b.onnx)")
    res = run_ab(args.model, args.ab[0], args.ab[1], rounds=args.rounds, block_s=1.0 if args.min_s is None else args.min_s,
                 min_effect=args.min_effect)
    text = str(res).split("\n")
    print("\n".join(text[:2]))
    _say_missing([res.a, res.b])
    print("\n".join(text[2:]))
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_compare(args) -> int:
    from ..perf.comparison import compare_many, comparison_table, load_results

    results = load_results(args.results)
    if len(results) < 2:
        raise ConfigError(f"edgekit compare: give at least two results (files holding one result or a list); "
                          f"got {len(results)}")
    comparisons = compare_many(results, min_effect=args.min_effect)
    _console().print(comparison_table(comparisons))
    for c in comparisons:
        print(c)
    _say_missing(results)
    if args.json:
        Path(args.json).write_text(json.dumps([c.to_dict() for c in comparisons], indent=1))
    return 0


def cmd_report(args) -> int:
    from ..perf.comparison import load_results
    from ..perf.report import read_profile, write_report

    results = load_results(args.results)
    profile = read_profile(args.profile) if args.profile else None
    path = write_report(results, args.out, profile=profile, title=args.title)
    print(f"wrote {path} ({len(results)} result(s))")
    return 0


def cmd_profile(args) -> int:
    from ..perf.profiler import profile
    from ..perf.verdict import verdict, watch

    with watch() as w:  # a profile has no timed samples of its own: the sampler's whole-run rules judge it
        r = profile(args.model, runs=args.runs, warmup=args.warmup, threads=args.threads, providers=args.providers,
                    optimization=args.optimization, keep_trace=args.trace)
    console = _console()
    table = r.table(top=args.top)
    for t in getattr(table, "renderables", [table]):  # every per-op table says the conditions in its title
        t.title = f"{t.title}  [{verdict(w.suspect)}]" if getattr(t, "title", None) else t.title
    console.print(table)
    console.print(f"model_run median {r.model_run_us:.1f} us [{verdict(w.suspect)}]; kernels are {r.node_time_fraction:.0%} of it; "
                  f"kernels: {', '.join(k + ' (' + '/'.join(v) + ')' for k, v in r.kernels.items())}", markup=False)
    if args.json:
        Path(args.json).write_text(json.dumps(r.to_dict(), indent=2))
        console.print(f"wrote {args.json}", markup=False)
    _say_missing(w.suspect)
    return 0


def register(sub) -> None:
    s = sub.add_parser("bench", help="benchmark a model: percentiles with CIs, throughput, memory, sampler")
    s.add_argument("model", nargs="?", help="zoo name or .onnx path")
    s.add_argument("--threads", type=int_list(0), help="intra-op threads (0: ONNX Runtime's default); a list sweeps: 1,2,4")
    s.add_argument("--optimization", type=opt_list, metavar="LEVELS",
                   help=f"graph optimization level(s), a comma list of {','.join(OPTIMIZATION_LEVELS)}")
    s.add_argument("--spin", type=spin_list, help="intra-op spin-wait: on, off or on,off")
    s.add_argument("--batch", type=int_list(1), help="batch size(s) for the dynamic batch axis")
    s.add_argument("--providers", type=str_list, help="execution provider(s), e.g. cpu or auto")
    s.add_argument("--mode", choices=["latency", "throughput"], default="latency")
    s.add_argument("--concurrency", type=count(1), default=1, help="throughput mode: parallel callers")
    s.add_argument("--sessions", type=count(1), default=1, help="throughput mode: sessions shared by the callers")
    s.add_argument("--min-runs", type=count(1), default=100)
    s.add_argument("--min-s", type=seconds, default=None,
                   help=f"measured seconds per run (default {MIN_S_PER_RUN} when runs are repeated, else 3; --ab: per block, 1)")
    s.add_argument("--repeat", type=_repeat_arg, default=AUTO,
                   help=f"independent runs (a fresh process each) per config, kept apart in the result's 'runs': "
                        f"N, or auto (default): {FIRST_RUNS} runs, then as many more as a +-{TARGET_CI * 100:g}%% CI of the "
                        f"p50 needs, within {BUDGET_S:g} s ({REPEAT} each in a sweep); 1: one run in this process"),
    s.add_argument("--timed", choices=["binding", "public"], default="binding",
                   help="what a sample times: binding = InferenceSession._sess.run, the C++ call Model.run makes "
                        "(default); public = InferenceSession.run, ~1 us more per call")
    s.add_argument("--min-effect", type=fraction, default=0.02,
                   help="--ab: a CI inside 1/(1+E)..1+E is 'no meaningful difference' (default 0.02 = 2%%)")
    s.add_argument("--max-s", type=seconds, default=15.0)
    s.add_argument("--warmup-s", type=seconds, default=None,
                   help=f"warm-up seconds before measuring (default {WARMUP_S_PER_RUN} per repeated run, else 0.5)")
    s.add_argument("--ab", nargs=2, metavar=("CONFIG_A", "CONFIG_B"),
                   help="interleaved A/B in separate processes, e.g. --ab threads=1 threads=2; model=PATH on a "
                        "side compares two models, e.g. --ab model=fp32.onnx model=int8.onnx")
    s.add_argument("--rounds", type=count(1), default=6, help="--ab: blocks per side")
    s.add_argument("--suite", help="run a suite file (benchmarks/suites/*.json), one result file per job")
    s.add_argument("--out", help="--suite: folder for the result files")
    s.add_argument("--force", action="store_true", help="--suite: redo results that already exist")
    s.add_argument("--scheduler", metavar="ADDRESS", help="--suite: run it on the boards of this dask cluster, "
                   "e.g. tcp://HOST:8786 (dist extra); results go to OUT/<board>/")
    s.add_argument("--on", type=str_list, metavar="LABELS", help="--scheduler: worker resource labels to run on, "
                   "e.g. board-rpi5,board-jetson (default: every label)")
    s.add_argument("--json", help="write the result(s) to this file")
    s.add_argument("--csv", help="write one CSV row per result")
    s.add_argument("--table", action="store_true", help="print the summary table even for one result")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("compare", help="ratios of medians with bootstrap CIs and a verdict")
    s.add_argument("results", nargs="+", help="result JSON files or folders (the first is the baseline)")
    s.add_argument("--json", help="write the comparisons to this file")
    s.add_argument("--min-effect", type=fraction, default=0.02,
                   help="equivalence band: a CI inside 1/(1+E)..1+E is 'no meaningful difference' (default 0.02 = 2%%)")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("report", help="self-contained HTML report with plots")
    s.add_argument("results", nargs="+", help="benchmark result JSON files or folders (an object or a list each)")
    s.add_argument("-o", "--out", default="report.html", help="HTML file to write (default: report.html)")
    s.add_argument("--profile", help="profile JSON (edgekit profile --json) for the per-operator chart")
    s.add_argument("--title", help="report title")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("profile", help="per-node and per-op-type time from ONNX Runtime's profiler")
    s.add_argument("model", help="zoo name or .onnx path")
    s.add_argument("--runs", type=count(1), default=20, help="profiled runs (default 20)")
    s.add_argument("--warmup", type=count(0), default=3, help="runs left out first (default 3)")
    s.add_argument("--threads", type=count(0), default=None, help="intra-op threads (0: ONNX Runtime's default)")
    s.add_argument("--optimization", default="all", choices=OPTIMIZATION_LEVELS)
    s.add_argument("--providers", default="cpu", help="execution provider(s), e.g. cpu or auto")
    s.add_argument("--json", help="write the ProfileResult as JSON here")
    s.add_argument("--top", type=count(1), default=15, help="how many nodes to list (default 15)")
    s.add_argument("--trace", help="keep ONNX Runtime's raw trace here")
    s.set_defaults(func=cmd_profile)
