"""How much does this machine's speed wander *within one process*? (issue 16: why +-2% is host-bound)

    python benchmarks/drift.py [--model mobilenetv2-224] [--runs 3] [--seconds 20] [--lengths 12]
                               [--out benchmarks/results/drift.json]

Each run is one long in-process ``edgekit.benchmark(MODEL, threads=1, min_s=SECONDS)``; its samples
are cut into 1 s windows by their start times (``sample_start_s``) and the p50 of each window is
taken. If the spread of those window p50s is as large as the spread between separate processes,
the run-to-run variation is the machine's speed moving over time, not something a fresh process
brings (memory layout, cores): more processes cannot remove it, only average it, and a CI of an
absolute p50 from ~15 s of such a machine cannot be much narrower than that spread allows.

``--lengths ROUNDS`` also compares run lengths for ``--repeat``: rounds of fresh-process runs
(``edgekit.perf.runs.run_once``) measuring 1 s after 0.5 s of warm-up against 0.5 s after 0.25 s,
interleaved, with the spread of their p50s and their wall time per run: if the spread is the same,
shorter runs give more runs, and so a narrower CI, per second.

Beside each run: the CPU time the hypervisor *stole* from this VM over the run (``/proc/stat``'s
``steal`` column, Linux; None elsewhere) and edgekit's own clean/suspect word (PSI, load, frequency
where present), to see whether any in-guest sensor moved with the speed. Writes JSON with every
window's p50. A benchmark, not a test: its figures are this machine's, cited in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import edgekit as ek
from edgekit.perf.verdict import verdict


def steal_ticks() -> int | None:
    """Clock ticks the hypervisor has stolen from this machine since boot (Linux), else None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8])  # cpu user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return None


def one_run(model: str, seconds: float, window_s: float = 1.0) -> dict:
    before = steal_ticks()
    r = ek.benchmark(model, threads=1, min_s=seconds, max_s=seconds + 5, max_runs=10**7).to_dict()
    after = steal_ticks()
    samples, starts = np.asarray(r["samples_ms"]), np.asarray(r["sample_start_s"])
    starts = starts - starts[0]
    edges = np.arange(0.0, starts[-1] - window_s + 1e-9, window_s)
    windows = [float(np.median(samples[(starts >= a) & (starts < a + window_s)])) for a in edges]
    logs = np.log(windows)
    return {"p50_ms": r["latency_ms"]["p50"], "samples": len(samples), "window_s": window_s,
            "window_p50_ms": windows, "window_sd": float(np.std(logs, ddof=1)),
            "window_range": float(np.exp(logs.max() - logs.min()) - 1),
            "steal_ticks": None if before is None or after is None else after - before,
            "word": verdict(r), "started_at": r["started_at"]}


LENGTHS = {"1.0 s + 0.5 s warm-up": {"min_s": 1.0, "warmup_s": 0.5},
           "0.5 s + 0.25 s warm-up": {"min_s": 0.5, "warmup_s": 0.25}}


def run_lengths(model: str, rounds: int) -> dict:
    """Interleaved rounds of one fresh-process run per length: the spread of p50 and wall s per run."""
    import time

    from edgekit.perf.runs import run_once

    p50: dict[str, list[float]] = {k: [] for k in LENGTHS}
    wall: dict[str, list[float]] = {k: [] for k in LENGTHS}
    for i in range(rounds):
        for name in (list(LENGTHS) if i % 2 == 0 else list(LENGTHS)[::-1]):
            t = time.perf_counter()
            r = run_once(model, {"threads": 1, **LENGTHS[name]})
            wall[name].append(time.perf_counter() - t)
            p50[name].append(r["latency_ms"]["p50"])
    return {name: {"p50_ms": p50[name], "sd": float(np.std(np.log(p50[name]), ddof=1)),
                   "wall_s_per_run": float(np.mean(wall[name]))} for name in LENGTHS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mobilenetv2-224")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--lengths", type=int, default=0, help="rounds comparing --repeat run lengths (0: skip)")
    p.add_argument("--out", default="benchmarks/results/drift.json")
    args = p.parse_args()
    runs = []
    for i in range(args.runs):
        runs.append(one_run(args.model, args.seconds))
        x = runs[-1]
        print(f"run {i + 1}/{args.runs}: p50 {x['p50_ms']:.3f} ms; {len(x['window_p50_ms'])} windows of 1 s: "
              f"sd {x['window_sd']:.1%}, max/min {x['window_range']:+.1%}; steal {x['steal_ticks']} ticks  "
              f"[{x['word']}]", flush=True)
    report = {"benchmark": "drift", "command": " ".join(["python", *sys.argv]), "model": args.model,
              "device": ek.device_info().to_dict(), "runs": runs,
              "window_sd_median": float(np.median([x["window_sd"] for x in runs]))}
    if args.lengths:
        report["run_lengths"] = run_lengths(args.model, args.lengths)
        for name, x in report["run_lengths"].items():
            print(f"runs of {name}: p50 spread (sd) {x['sd']:.1%} over {args.lengths} interleaved rounds, "
                  f"{x['wall_s_per_run']:.2f} s a run")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"median sd of 1 s windows inside one process: {report['window_sd_median']:.1%}; wrote {args.out}")


if __name__ == "__main__":
    main()
