"""Independent runs: ``edgekit bench --repeat auto|N``, :func:`run_auto` and :func:`run_repeated`.

A run is one process: it loads the model, warms up and measures (:func:`edgekit.benchmark`, in a
process of its own). The process itself moves the whole latency distribution (memory layout, the cores
it lands on, what else ran that second), so run-to-run variation is measured only by running
again in a fresh process — as pyperf's worker processes and Google Benchmark's repetitions do.
:func:`run_repeated` runs N of them one after the other (never side by side: they would contend
for the cores), :func:`run_auto` as many as a +-2% CI of the p50 needs within ~15 s, and
:func:`merge_runs` makes one result of them. :func:`run_once` is the one way a run's process is
started (``--ab`` blocks and sweeps too); a mistake of the caller's in it (no such model, a bad
option) comes back as one :class:`~edgekit._errors.ConfigError` line. A merged result has:

- ``runs``: each process's own ``n_samples`` (its slice of the pooled ``samples_ms``, in run order:
  samples are stored once), ``latency_ms``, ``cpu_s_per_inference``,
  ``throughput_ips``, ``cold_start_ms``, ``memory``, ``suspect``, ``sampler``, ``started_at``;
- ``samples_ms`` and ``latency_ms``: all runs' samples pooled, except ``latency_ms.p50_ci``: the
  ~95% CI of the geometric mean of the runs' medians (``latency_ms.p50_runs``), from
  :func:`edgekit.perf.stats.hierarchical_log_estimate` with Student's t on ``runs - 1`` degrees of
  freedom; the within-run CI of the pooled samples is kept as ``p50_ci_within_runs``;
- ``suspect``: any run's reasons, each prefixed with its run.

``edgekit compare`` and :func:`edgekit.perf.comparison.compare` then use ``runs`` for a
hierarchical bootstrap CI of the ratio.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._errors import ConfigError, EdgekitError

# numpy and .stats are imported in the functions that use them: the command line reads this module's
# constants for its --help without paying for numpy

TARGET_CI = 0.02  # --repeat auto: the p50's CI half-width it aims for (+-2%)
BUDGET_S = 14.0  # --repeat auto: seconds its runs may take (the command, with its start and output: ~15 s)
FIRST_RUNS = 5  # --repeat auto: runs that estimate the run-to-run spread (stage one)
MAX_RUNS = 40

USER_ERROR, USER_ERROR_PREFIX = 2, "edgekit: error: "  # how a run's process reports a mistake of the caller's

RUN_KEYS = ("latency_ms", "cpu_s_per_inference", "throughput_ips", "cold_start_ms", "memory",
            "suspect", "sampler", "energy", "started_at")


def run_repeated(model, repeat: int, *, on_run: Callable[[int, dict], None] | None = None, **options):
    """Benchmark ``model`` in ``repeat`` fresh processes, one after the other; a merged
    :class:`~edgekit.perf.bench.BenchResult` with each run under ``runs``. Options as
    :func:`edgekit.benchmark` (:class:`~edgekit.perf.bench.BenchConfig` fields); ``on_run(i, result)``
    is called after each run (i from 1), e.g. to show progress."""
    from .bench import _config

    if not isinstance(repeat, int) or repeat < 1:
        raise ConfigError(f"repeat is the number of independent runs (processes), an integer >= 1; got {repeat!r}")
    _config(options)  # a bad option fails here, before any process starts
    runs: list[dict] = []
    for _ in range(repeat):
        _add_run(runs, model, options, repeat, on_run)
    return merge_runs(runs)


def _add_run(runs: list[dict], model, options: dict, total: int, on_run) -> None:
    """One more run (a fresh process) appended to ``runs``; ``on_run(i, result)`` told, i from 1."""
    runs.append(run_once(model, options, what=f"run {len(runs) + 1} of {total}"))
    if on_run:
        on_run(len(runs), runs[-1])


def run_auto(model, *, target: float = TARGET_CI, budget_s: float = BUDGET_S, first: int = FIRST_RUNS,
             max_runs: int = MAX_RUNS, on_run: Callable[[int, dict], None] | None = None, **options):
    """``edgekit bench --repeat auto`` (the default): as many runs as the p50's CI needs to be within
    ``+-target`` (0.02: +-2%), as far as ``budget_s`` seconds allow. The merged result's ``repeat`` record
    says how many runs were planned and why, and whether the target was reached.

    Stein's two-stage procedure (Stein 1945, the textbook way to reach a CI width with an unknown
    variance): ``first`` runs estimate the run-to-run spread ``s`` of log p50; the number of runs the
    target needs is ``ceil((t(first - 1) * s / target) ** 2)``, capped by what fits in the budget at
    the first runs' pace. The decision uses only the first stage, so it cannot stop at a lucky moment
    (stopping as soon as the CI looks narrow would make CIs too narrow); the CI is then computed
    over every run as for ``--repeat N``. A machine whose speed moves more than the budget can average
    (a shared VM: 3-7% between seconds) gets its real, wider CI and a note saying so."""
    from .bench import _config
    from .stats import t_quantile

    if not 0 < target < 1 or budget_s <= 0 or not 2 <= first <= max_runs:
        raise ConfigError(f"run_auto needs 0 < target < 1, budget_s > 0 and 2 <= first <= max_runs; "
                          f"got target={target!r}, budget_s={budget_s!r}, first={first!r}, max_runs={max_runs!r}")
    _config(options)
    t0 = time.perf_counter()
    runs: list[dict] = []
    for _ in range(first):
        _add_run(runs, model, options, first, on_run)
    spent = time.perf_counter() - t0
    s = _log_spread(runs)
    needed = max(first, math.ceil((t_quantile(0.975, first - 1) * s / target) ** 2))
    fits = first + int(max(0.0, budget_s - spent) // (spent / first))
    planned = min(needed, fits, max_runs)
    for _ in range(planned - first):
        _add_run(runs, model, options, planned, on_run)
    merged = merge_runs(runs)
    lo, hi = merged.latency_ms["p50_ci"]
    half = (hi - lo) / 2 / merged.latency_ms["p50"]
    merged.repeat = {"mode": "auto", "target": target, "budget_s": budget_s, "first": first,
                     "first_spread": s, "needed": needed, "fits": fits, "runs": planned,
                     "ci_half_width": half, "reached": half <= target, "wall_s": time.perf_counter() - t0}
    return merged


def _log_spread(runs: list[dict]) -> float:
    """The standard deviation of the runs' log p50s (the run-to-run spread, as a fraction)."""
    import numpy as np

    logs = [math.log(float(np.median(r["samples_ms"]))) for r in runs]
    return float(np.std(logs, ddof=1))


def run_once(model, options: dict, *, what: str = "a run") -> dict:
    """One run of ``model`` in a fresh process (``python -m edgekit.perf.runs``): its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        spec = json.dumps({"model": str(model), "options": options})
        proc = subprocess.run([sys.executable, "-m", "edgekit.perf.runs", spec, str(out)],
                              capture_output=True, text=True, check=False)
        if proc.returncode == USER_ERROR and proc.stderr.startswith(USER_ERROR_PREFIX):  # the model or an option
            raise ConfigError(f"{what} of {model}: {proc.stderr.strip().removeprefix(USER_ERROR_PREFIX)}")
        if proc.returncode != 0:
            why = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            raise RuntimeError(f"{what} of {model} failed in its process: {why[0]}")
        return json.loads(out.read_text())


def merge_runs(runs: list[dict]):
    """One :class:`~edgekit.perf.bench.BenchResult` of several runs (result dicts) of one config."""
    import numpy as np

    from .bench import BenchConfig, BenchResult
    from .stats import summarize

    if not runs:
        raise ValueError("merge_runs needs at least one run")
    first = runs[0]
    pooled = [s for r in runs for s in r["samples_ms"]]
    latency = summarize(pooled)
    latency["p50_ci_within_runs"] = latency["p50_ci"]
    latency["runs"] = len(runs)
    latency["p50_runs"], latency["p50_ci"] = runs_p50_ci([r["samples_ms"] for r in runs])
    n_total = sum(len(r["samples_ms"]) for r in runs)
    cpu = [r.get("cpu_s_per_inference") for r in runs]
    reasons = [f"run {i + 1}: {x}" for i, r in enumerate(runs) for x in (r.get("suspect") or {}).get("reasons", [])]
    peaks = [(r.get("memory") or {}).get("peak_rss_bytes") for r in runs]
    return BenchResult(
        model=first["model"], model_sha256=first["model_sha256"], config=BenchConfig(**first["config"]),
        cold_start_ms={k: float(np.median([r["cold_start_ms"][k] for r in runs])) for k in first["cold_start_ms"]},
        latency_ms=latency,
        throughput_ips=float(np.mean([r["throughput_ips"] for r in runs])),
        samples_ms=pooled,
        memory={**(first.get("memory") or {}), "peak_rss_bytes": max((p for p in peaks if p is not None), default=None)},
        cpu_s_per_inference=(sum(c * len(r["samples_ms"]) for c, r in zip(cpu, runs)) / n_total
                             if None not in cpu else None),
        suspect={"is_suspect": any((r.get("suspect") or {}).get("is_suspect") for r in runs), "reasons": reasons},
        energy=first.get("energy") or {},
        device=first.get("device") or {}, environment=first.get("environment") or {},
        timed=first.get("timed", ""), started_at=first.get("started_at", ""),
        runs=[{"n_samples": len(r["samples_ms"]), **{k: r[k] for k in RUN_KEYS if k in r}} for r in runs],
    )


def runs_p50_ci(runs: list[list[float]], *, alpha: float = 0.05, n_boot: int = 2000,
                seed: int = 0) -> tuple[float, list[float] | None]:
    """The geometric mean of the runs' medians and its ~95% CI (None for one run)."""
    import numpy as np

    from .stats import hierarchical_log_estimate, t_quantile

    rng = np.random.default_rng(seed)
    if len(runs) < 2:
        return float(np.median(runs[0])), None
    log_p50, se = hierarchical_log_estimate(runs, n_boot=n_boot, rng=rng)
    half = t_quantile(1 - alpha / 2, len(runs) - 1) * se
    return math.exp(log_p50), [math.exp(log_p50 - half), math.exp(log_p50 + half)]


def _child(spec: str, out: str) -> None:
    """One run, in the process ``run_repeated`` started: ``python -m edgekit.perf.runs SPEC OUT``."""
    from .._io import atomic_write
    from .bench import benchmark

    job: dict[str, Any] = json.loads(spec)
    try:
        result = benchmark(job["model"], **job["options"])
    except EdgekitError as exc:  # a mistake of the caller's (no such model, a bad option): one line for run_once
        sys.stderr.write(f"{USER_ERROR_PREFIX}{exc}\n")
        sys.exit(USER_ERROR)
    atomic_write(out, json.dumps(result.to_dict()))


if __name__ == "__main__":
    _child(*sys.argv[1:3])
