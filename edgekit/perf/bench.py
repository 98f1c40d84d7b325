"""``edgekit.benchmark``: timing an ONNX model the way a careful researcher would.

The loop rule follows TFLite's benchmark_model: warm up for at least ``warmup_runs`` runs AND
``warmup_s`` seconds, then measure until at least ``min_runs`` runs AND ``min_s`` seconds have
passed, stopping at ``max_s`` or ``max_runs`` whatever happens. Cold start (session creation and the first
inference) is reported apart from warm latency. Every sample is kept, with the device
fingerprint, versions, model sha256, the full configuration, memory, CPU time, and what a
background sampler saw (frequency, temperature, CPU pressure) — a contaminated run is flagged.

Timing: one ``time.perf_counter()`` pair around each ``run`` call (the same C++ call
``Model.run`` makes). Percentiles and confidence intervals: see :mod:`edgekit.perf.stats`.

>>> r = benchmark("digits-cnn", min_runs=20, min_s=0.05, warmup_s=0.01)
>>> r.latency_ms["n"] >= 20 and r.latency_ms["p50"] > 0
True
"""

from __future__ import annotations

import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from .._errors import ConfigError
from .stats import summarize

SCHEMA_VERSION = 1
MODES = ("latency", "throughput")


@dataclass
class BenchConfig:
    """Everything that defines a run; stored in every result."""

    threads: int | None = None
    providers: Any = "cpu"
    optimization: str = "all"
    spin_wait: bool | None = None
    batch_size: int = 1
    mode: str = "latency"  # "throughput": `concurrency` callers share `sessions` sessions
    concurrency: int = 1
    sessions: int = 1
    warmup_runs: int = 10
    warmup_s: float = 0.5
    min_runs: int = 100
    min_s: float = 3.0
    max_s: float = 15.0
    max_runs: int = 100_000  # a cap like max_s: keeps result files of microsecond models small
    sample_interval_s: float = 0.1

    def label(self) -> str:
        parts = [f"threads={self.threads or 'default'}", f"opt={self.optimization}"]
        if self.spin_wait is not None:
            parts.append(f"spin={'on' if self.spin_wait else 'off'}")
        if self.batch_size != 1:
            parts.append(f"batch={self.batch_size}")
        if self.mode == "throughput":
            parts.append(f"throughput x{self.concurrency}/{self.sessions}s")
        return " ".join(parts)


@dataclass
class BenchResult:
    model: str
    model_sha256: str
    config: BenchConfig
    cold_start_ms: dict[str, float]
    latency_ms: dict[str, Any]
    throughput_ips: float
    samples_ms: list[float] = field(repr=False)
    memory: dict[str, int | None] = field(default_factory=dict)
    cpu_s_per_inference: float | None = None
    sampler: dict[str, Any] = field(default_factory=dict, repr=False)
    suspect: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict, repr=False)
    environment: dict[str, Any] = field(default_factory=dict, repr=False)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lat = self.latency_ms
        ci = lat.get("p50_ci")
        ci_txt = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        text = (f"{self.model}: p50 {lat['p50']:.3f} ms{ci_txt}, p90 {lat['p90']:.3f}, p99 {lat['p99']:.3f}, "
                f"mean {lat['mean']:.3f} ± {lat['std']:.3f} ms over {lat['n']} runs; "
                f"{self.throughput_ips:.1f} inferences/s; cold start {self.cold_start_ms['session_ms']:.1f} ms "
                f"+ first run {self.cold_start_ms['first_run_ms']:.2f} ms")
        if self.suspect.get("is_suspect"):
            text += "\n  SUSPECT: " + "; ".join(self.suspect.get("reasons", []))
        return text


def random_feed(model, batch_size: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the right dtype and shape (dynamic axes = ``batch_size``), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in model.inputs:
        shape = [d if isinstance(d, int) else batch_size for d in spec.shape]
        if spec.dtype.kind == "f":
            feed[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            feed[spec.name] = rng.integers(0, 10, size=shape).astype(spec.dtype)
    return feed


class _RssPeak:
    """Polls this process's resident memory in a thread; ``peak`` is the highest seen."""

    def __init__(self, interval_s: float = 0.05):
        import psutil

        self._proc, self._interval, self._stop = psutil.Process(), interval_s, threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _measure_latency(call: Callable[[], Any], cfg: BenchConfig, tick: Callable[[int], None]) -> tuple[list[float], float]:
    clock = time.perf_counter
    start = clock()
    n = 0
    while n < cfg.warmup_runs or clock() - start < cfg.warmup_s:
        call()
        n += 1
        if clock() - start > cfg.max_s:
            break
    samples: list[float] = []
    append = samples.append
    start = clock()
    t = start
    while len(samples) < cfg.min_runs or t - start < cfg.min_s:
        t = clock()
        call()
        append(clock() - t)
        if t - start > cfg.max_s or len(samples) >= cfg.max_runs:
            break
        if not len(samples) & 255:
            tick(len(samples))
    return samples, clock() - start


def _measure_throughput(calls: list[Callable[[], Any]], cfg: BenchConfig, tick) -> tuple[list[float], float]:
    """``cfg.concurrency`` threads call in parallel (ONNX Runtime releases the GIL in run())."""
    for call in calls:  # warm every session
        for _ in range(max(1, cfg.warmup_runs // len(calls))):
            call()
    stop = threading.Event()
    per_thread: list[list[float]] = [[] for _ in range(cfg.concurrency)]

    def worker(i):
        call, out, clock = calls[i % len(calls)], per_thread[i], time.perf_counter
        while not stop.is_set():
            t = clock()
            call()
            out.append(clock() - t)

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
    return [s for out in per_thread for s in out], time.perf_counter() - start


def benchmark(model, feed: dict | None = None, *, progress: bool = False, **options) -> BenchResult:
    """Benchmark a zoo name or ``.onnx`` path (fresh sessions, so cold start is measured).

    Options are :class:`BenchConfig` fields, e.g. ``threads=2, spin_wait=False, batch_size=8,
    mode="throughput", concurrency=4``. ``progress=True`` shows a progress bar on a terminal.
    """
    import psutil

    from ..runtime import zoo
    from ..runtime.device import device_info
    from ..runtime.model import load

    cfg = BenchConfig(**options)
    if cfg.mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    load_kw = dict(providers=cfg.providers, threads=cfg.threads, optimization=cfg.optimization, spin_wait=cfg.spin_wait)
    m = load(model, **load_kw)
    session_ms = (time.perf_counter() - t0) * 1e3
    rss_session = proc.memory_info().rss - rss0
    feed = feed if feed is not None else random_feed(m, cfg.batch_size)
    t1 = time.perf_counter()
    m.run(feed)  # validates the feed once, with teaching errors; also the first inference
    first_ms = (time.perf_counter() - t1) * 1e3

    models = [m] + [load(model, **load_kw) for _ in range(cfg.sessions - 1)] if cfg.mode == "throughput" else [m]
    calls = [lambda r=x._run, names=x._output_names: r(names, feed, None) for x in models]

    sampler, energy = _optional_sampler(cfg.sample_interval_s), _optional_energy()
    with _progress(progress, f"{m.name} {cfg.label()}", cfg.min_runs) as tick, _RssPeak() as rss:
        if sampler:
            sampler.__enter__()
        if energy:
            energy.start()
        cpu0 = time.process_time()  # CPU seconds of all threads of this process
        try:
            if cfg.mode == "latency":
                samples, total = _measure_latency(calls[0], cfg, tick)
            else:
                samples, total = _measure_throughput(calls, cfg, tick)
        finally:
            cpu_s = time.process_time() - cpu0
            reading = energy.stop() if energy else None
            if sampler:
                sampler.__exit__(None, None, None)
    ms = [s * 1e3 for s in samples]
    import onnxruntime as ort

    from .._version import __version__

    return BenchResult(
        model=m.name,
        model_sha256=zoo.file_sha256(m.path),
        config=cfg,
        cold_start_ms={"session_ms": session_ms, "first_run_ms": first_ms},
        latency_ms=summarize(ms),
        throughput_ips=len(ms) * cfg.batch_size / total,
        samples_ms=ms,
        memory={"peak_rss_bytes": rss.peak, "session_rss_increment_bytes": rss_session},
        cpu_s_per_inference=cpu_s / max(1, len(ms)),
        sampler=_sampler_record(sampler),
        suspect=_assess(sampler),
        energy=_energy_record(energy, reading, len(ms) * cfg.batch_size),
        device=device_info().to_dict(),
        environment={"edgekit": __version__, "onnxruntime": ort.__version__, "providers": m.providers,
                     "provider_reason": m.provider_choice.reason if m.provider_choice else None,
                     "python": platform.python_version(), "machine": platform.machine()},
    )


# --- optional pieces: background sampler and energy meter --------------------------------

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


def _assess(sampler) -> dict:
    if sampler is None:
        return {"is_suspect": False, "reasons": [], "notes": ["no background sampler"]}
    from .sampler import assess

    a = assess(sampler.samples)
    return {"is_suspect": a.is_suspect, "reasons": list(a.reasons), "notes": list(getattr(a, "notes", []))}


def _optional_energy():
    try:
        from .energy import EnergyMeter
    except ImportError:
        return None
    meter = EnergyMeter()
    return meter if meter.available else _Unavailable(meter.detail)


class _Unavailable:
    def __init__(self, detail):
        self.detail, self.available = detail, False

    def start(self):
        pass

    def stop(self):
        return None


def _energy_record(meter, reading, inferences: int) -> dict:
    if meter is None:
        return {"available": False, "detail": "no energy reader"}
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
