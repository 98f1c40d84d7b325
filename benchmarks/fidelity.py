"""Does ``edgekit.benchmark`` report what an independent stopwatch sees? And what does its loop cost?

    python benchmarks/fidelity.py [--model mobilenetv2-224] [--rounds 6] [--out benchmarks/results/fidelity.json]

Fidelity: in each round, edgekit.benchmark (1 thread) and an independent raw loop
(``InferenceSession.run`` timed with perf_counter, its own session, same input, same run count)
run back to back, in alternating order; the figure is the median over rounds of
edgekit p50 / raw p50 (target: within 3%).
Overhead: the measurement loop of edgekit.perf.bench timing a call that does nothing; per-iteration
cost = loop wall time / iterations (two perf_counter calls, a list append, the loop checks).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import edgekit as ek
from edgekit.perf.bench import BenchConfig, random_feed
from edgekit.perf.loop import measure_latency


def raw_p50(path: str, feed: dict, n: int) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(10):
        sess.run(None, feed)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
    return float(np.percentile(times, 50) * 1e3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mobilenetv2-224")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--out", default="benchmarks/results/fidelity.json")
    args = p.parse_args()
    path = str(ek.zoo.path(args.model))
    feed = random_feed(ek.load(path))
    rounds = []
    for r in range(args.rounds):
        def ours():
            return ek.benchmark(path, feed=feed, threads=1, min_runs=100, min_s=1.0, warmup_s=0.3).latency_ms
        def theirs(n):
            return raw_p50(path, feed, n)
        if r % 2 == 0:
            lat = ours()
            raw = theirs(lat["n"])
        else:
            raw = theirs(200)
            lat = ours()
        rounds.append({"edgekit_p50_ms": lat["p50"], "raw_p50_ms": raw, "ratio": lat["p50"] / raw})
        print(f"round {r}: edgekit p50 {lat['p50']:.4f} ms, raw loop p50 {raw:.4f} ms, ratio {lat['p50'] / raw:.4f}")
    ratio = statistics.median(x["ratio"] for x in rounds)

    cfg = BenchConfig(warmup_runs=1000, warmup_s=0.0, min_runs=1_000_000, min_s=0.0, max_s=30)
    samples, total = measure_latency(lambda: None, cfg, lambda n: None)
    per_iter_us = total / len(samples) * 1e6
    print(f"fidelity: edgekit p50 / raw p50 = {ratio:.4f} (median of {len(rounds)} rounds; target within 3%)")
    print(f"loop bookkeeping: {per_iter_us:.3f} us per iteration with a no-op call "
          f"({len(samples)} iterations; target < 1 us); a sample of a no-op reads {np.median(samples) * 1e6:.3f} us")
    out = {"benchmark": "fidelity", "model": args.model, "rounds": rounds, "median_ratio": ratio,
           "loop_overhead_us_per_iteration": per_iter_us, "noop_sample_median_us": float(np.median(samples) * 1e6),
           "device": ek.device_info().to_dict(), "onnxruntime": ort.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
