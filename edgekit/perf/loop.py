"""The timing loop over any callable: MLPerf LoadGen's "system under test", edgekit-sized.

The loop never knows what it times: a call is a ``Callable[[], Any]`` (an ONNX Runtime session's
``run`` with its feed bound, a Python function, a pipeline stage). :func:`run_loop` times it under
the rules of a :class:`~edgekit.perf.bench.BenchConfig` and watches the run with one
:class:`~edgekit.perf.monitor.Monitor` thread (peak memory, the background sampler, energy);
:func:`edgekit.benchmark` is a thin user that loads a model and hands over its ``run``.

Loop rule (TFLite's benchmark_model): warm up for at least ``warmup_runs`` runs AND ``warmup_s``
seconds, then measure until at least ``min_runs`` runs AND ``min_s`` seconds have passed, stopping
at ``max_s`` or ``max_runs`` whatever happens. Timing: one ``time.perf_counter()`` pair per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .monitor import Monitor, RssPeak
from .stats import summarize

if TYPE_CHECKING:
    from .bench import BenchConfig


def measure_latency(call: Callable[[], Any], cfg: BenchConfig, tick: Callable[[int], None],
                    starts: list[float] | None = None,
                    on_measure: Callable[[], None] | None = None) -> tuple[list[float], float]:
    """One caller, back to back: the seconds of each measured call, and the measured span;
    ``starts`` (when given) receives each call's ``perf_counter`` start; ``on_measure`` is called
    once, when warm-up ends and measurement begins."""
    clock = time.perf_counter
    start = clock()
    n = 0
    while n < cfg.warmup_runs or clock() - start < cfg.warmup_s:
        call()
        n += 1
        if clock() - start > cfg.max_s:
            break
    samples: list[float] = []
    append, stamp = samples.append, (starts if starts is not None else []).append
    if on_measure:
        on_measure()
    start = clock()
    t = start
    while len(samples) < cfg.min_runs or t - start < cfg.min_s:
        t = clock()
        call()
        append(clock() - t)
        stamp(t)
        if t - start > cfg.max_s or len(samples) >= cfg.max_runs:
            break
        if not len(samples) & 255:
            tick(len(samples))
    return samples, clock() - start


def measure_throughput(calls: Sequence[Callable[[], Any]], cfg: BenchConfig, tick,
                       starts: list[float] | None = None,
                       on_measure: Callable[[], None] | None = None) -> tuple[list[float], float]:
    """``cfg.concurrency`` threads call in parallel (ONNX Runtime releases the GIL in run());
    ``starts`` (when given) receives each call's ``perf_counter`` start, in the order of the samples;
    ``on_measure`` is called once, when warm-up ends and measurement begins."""
    for call in calls:  # warm every session
        for _ in range(max(1, cfg.warmup_runs // len(calls))):
            call()
    if on_measure:
        on_measure()
    stop = threading.Event()
    per_thread: list[list[float]] = [[] for _ in range(cfg.concurrency)]
    stamps: list[list[float]] = [[] for _ in range(cfg.concurrency)]

    def worker(i):
        call, out, at, clock = calls[i % len(calls)], per_thread[i], stamps[i], time.perf_counter
        while not stop.is_set():
            t = clock()
            call()
            out.append(clock() - t)
            at.append(t)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(cfg.concurrency)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    while True:
        elapsed = time.perf_counter() - start
        done = sum(map(len, per_thread))
        tick(done)
        if (done >= cfg.min_runs and elapsed >= cfg.min_s) or elapsed >= cfg.max_s:
            break
        time.sleep(0.01)
    stop.set()
    for th in threads:
        th.join()
    if starts is not None:
        starts += [t for at in stamps for t in at]
    return [s for out in per_thread for s in out], time.perf_counter() - start


def run_loop(calls: Sequence[Callable[[], Any]], cfg: BenchConfig, *, label: str = "", progress: bool = False) -> dict[str, Any]:
    """Time ``calls`` (one in latency mode; shared by ``cfg.concurrency`` threads in throughput
    mode) and return the measured fields of a :class:`~edgekit.perf.bench.BenchResult`:
    ``latency_ms, throughput_ips, samples_ms, sample_start_s, memory, cpu_s_per_inference, sampler, suspect,
    energy``. ``sample_start_s``: each sample's start in seconds on the clock of the sampler's ticks
    (``sampler.samples[i]["t"]``), so that samples overlapping a burst are marked (:mod:`edgekit.perf.bursts`)."""
    sampler, energy = _optional_sampler(cfg.sample_interval_s), _optional_energy()
    rss = RssPeak()
    probes = [p for p in (rss, sampler, energy) if p is not None and getattr(p, "available", True)]
    with _progress(progress, label, cfg.min_runs) as tick, Monitor(*probes, period_s=cfg.sample_interval_s):
        cpu0 = [time.process_time()]  # CPU seconds of all threads of this process, from the measured phase on
        starts: list[float] = []

        def measuring() -> None:  # warm-up's CPU is not the measured phase's (21.96 vs 7.26 ms at 4 s warm-up)
            cpu0[0] = time.process_time()
        try:
            if cfg.mode == "latency":
                samples, total = measure_latency(calls[0], cfg, tick, starts, measuring)
            else:
                samples, total = measure_throughput(calls, cfg, tick, starts, measuring)
        finally:
            cpu_s = time.process_time() - cpu0[0]
    ms = [s * 1e3 for s in samples]
    origin = sampler.origin if sampler is not None and sampler.origin is not None else (starts[0] if starts else 0.0)
    starts_s = [round(t - origin, 6) for t in starts]
    suspect = _assess(sampler, starts_s, ms)
    latency = summarize(ms)
    if "bursts" in suspect:  # the tail without the samples that overlapped a disturbance
        latency.update({k: suspect["bursts"][k] for k in ("p90_unmarked", "p99_unmarked")},
                       n_marked=suspect["bursts"]["n_marked"])
    return {
        "latency_ms": latency, "throughput_ips": len(ms) * cfg.batch_size / total, "samples_ms": ms,
        "sample_start_s": starts_s,
        "memory": {"peak_rss_bytes": rss.peak}, "cpu_s_per_inference": cpu_s / max(1, len(ms)),
        "sampler": _sampler_record(sampler), "suspect": suspect,
        "energy": _energy_record(energy, len(ms) * cfg.batch_size),
    }


# --- optional probes: background sampler and energy meter --------------------------------

def _optional_sampler(interval_s: float):
    try:
        from .sampler import Sampler
    except ImportError:
        return None
    return Sampler(interval_s=interval_s)


def _sampler_record(sampler) -> dict:
    if sampler is None:
        return {}
    return {"interval_s": sampler.interval_s, "samples": list(sampler.samples), "summary": sampler.summary()}


def _assess(sampler, starts_s: list[float] | None = None, samples_ms: list[float] | None = None) -> dict:
    if sampler is None:
        return {"is_suspect": False, "reasons": [], "notes": ["no background sampler"]}
    from .verdict import judge

    return judge(sampler.samples, starts_s or [], samples_ms or [])


def _optional_energy():
    try:
        from .energy import EnergyMeter
    except ImportError:
        return None
    return EnergyMeter()


def _energy_record(meter, inferences: int) -> dict:
    if meter is None:
        return {"available": False, "detail": "no energy reader"}
    reading = meter.reading if meter.available else None
    if reading is None:
        return {"available": False, "detail": f"not available on this device: {meter.detail}"}
    return {"available": True, "source": reading.source, "joules": reading.joules, "seconds": reading.seconds,
            "joules_per_inference": reading.joules / max(1, inferences)}


class _progress:
    """A rich progress bar on a terminal when asked; a no-op ``tick`` otherwise."""

    def __init__(self, enabled: bool, label: str, total: int):
        self.enabled, self.label, self.total, self.bar = enabled, label, total, None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda n: self.bar.update(task, completed=min(n, self.total))

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
