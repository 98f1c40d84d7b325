"""Does a fixed reference workload see the host load that in-guest sensors miss? (exploratory, issue 16)

    python benchmarks/canary.py [--pairs 20] [--out benchmarks/results/canary.json]

A/A pairs as ``benchmarks/trust.py``'s "separate commands" check (two sides of 5 runs of
``mobilenetv2-224`` at 1 thread, each run a fresh process via ``edgekit.perf.runs.run_once``), with a
*canary* timed in this (idle) parent process just before and just after every run: the fastest of 7
repetitions of 30 products of two 192x192 float32 matrices. It prints, and writes, each pair's
ratio and verdict beside the ratio of the two sides' mean canaries, and two correlations: per run
(run p50 against its canary) and per pair (log ratio against log canary ratio). A sensor for
machine-speed drift would need both high; see benchmarks/README.md for what was found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgekit.perf.comparison import compare
from edgekit.perf.runs import merge_runs, run_once

MATRIX = np.random.default_rng(0).random((192, 192), dtype=np.float32)


def canary() -> float:
    """Milliseconds of a fixed numpy workload: the fastest of 7 repetitions."""
    times = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(30):
            MATRIX @ MATRIX
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--model", default="mobilenetv2-224")
    p.add_argument("--out", default="benchmarks/results/canary.json")
    args = p.parse_args()
    options = {"threads": 1, "min_s": 1.0, "warmup_s": 0.5}
    rows = []
    for i in range(args.pairs):
        sides = []
        for _ in "AB":
            runs, canaries = [], []
            for _ in range(5):
                before = canary()
                runs.append(run_once(args.model, options))
                canaries.append((before + canary()) / 2)
            sides.append({"result": merge_runs(runs).to_dict(), "canary_ms": canaries,
                          "run_p50_ms": [r["latency_ms"]["p50"] for r in runs]})
        c = compare(sides[0]["result"], sides[1]["result"], names=("A", "B"))
        canary_ratio = float(np.mean(sides[0]["canary_ms"]) / np.mean(sides[1]["canary_ms"]))
        rows.append({"pair": i + 1, "ratio": c.ratio, "ci": list(c.ci), "different": c.different,
                     "canary_ratio": canary_ratio, "sides": [{k: s[k] for k in ("canary_ms", "run_p50_ms")} for s in sides]})
        print(f"pair {i + 1}: ratio {c.ratio:.3f} (CI {c.ci[0]:.3f}-{c.ci[1]:.3f}, different: {c.different}); "
              f"canary A/B {canary_ratio:.3f}", flush=True)
    p50 = [x for r in rows for s in r["sides"] for x in s["run_p50_ms"]]
    can = [x for r in rows for s in r["sides"] for x in s["canary_ms"]]
    per_run = float(np.corrcoef(p50, can)[0, 1])
    per_pair = float(np.corrcoef(np.log([r["ratio"] for r in rows]), np.log([r["canary_ratio"] for r in rows]))[0, 1])
    print(f"correlation per run (p50 against its canary): {per_run:.2f}; per pair (log ratio against log canary "
          f"ratio): {per_pair:.2f}; pairs called different: {sum(r['different'] for r in rows)} of {len(rows)}")
    out = {"benchmark": "canary", "command": " ".join(["python", *sys.argv]), "per_run_correlation": per_run,
           "per_pair_correlation": per_pair, "different": sum(r["different"] for r in rows), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
