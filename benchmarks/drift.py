"""How much does this machine's speed wander *within one process*? (issue 16: why +-2% is host-bound)

    python benchmarks/drift.py [--model mobilenetv2-224] [--runs 3] [--seconds 20] [--out benchmarks/results/drift.json]

Each run is one long in-process ``edgekit.benchmark(MODEL, threads=1, min_s=SECONDS)``; its samples
are cut into 1 s windows by their start times (``sample_start_s``) and the p50 of each window is
taken. If the spread of those window p50s is as large as the spread between separate processes,
the run-to-run variation is the machine's speed moving over time, not something a fresh process
brings (memory layout, cores): more processes cannot remove it, only average it, and a CI of an
absolute p50 from ~15 s of such a machine cannot be much narrower than that spread allows.

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mobilenetv2-224")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0)
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
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"median sd of 1 s windows inside one process: {report['window_sd_median']:.1%}; wrote {args.out}")


if __name__ == "__main__":
    main()
