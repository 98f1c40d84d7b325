"""``edgekit.benchmark``: timing an ONNX model the way a careful researcher would.

The loop rule follows TFLite's benchmark_model: warm up for at least ``warmup_runs`` runs AND
``warmup_s`` seconds, then measure until at least ``min_runs`` runs AND ``min_s`` seconds have
passed, stopping at ``max_s`` whatever happens. Cold start (session creation and the first
inference) is reported apart from warm latency. Every sample is kept.

>>> r = benchmark("digits-cnn", min_runs=20, min_s=0.05, warmup_s=0.01)
>>> r.latency_ms["n"] >= 20 and r.latency_ms["p50"] > 0
True
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .stats import summarize

SCHEMA_VERSION = 1


@dataclass
class BenchConfig:
    threads: int | None = None
    providers: Any = "cpu"
    optimization: str = "all"
    batch_size: int = 1
    warmup_runs: int = 10
    warmup_s: float = 0.5
    min_runs: int = 100
    min_s: float = 3.0
    max_s: float = 15.0


@dataclass
class BenchResult:
    model: str
    model_sha256: str
    config: BenchConfig
    cold_start_ms: dict[str, float]
    latency_ms: dict[str, Any]
    throughput_ips: float
    samples_ms: list[float] = field(repr=False)
    environment: dict[str, Any] = field(default_factory=dict, repr=False)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lat = self.latency_ms
        ci = lat.get("p50_ci")
        ci_txt = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        return (f"{self.model}: p50 {lat['p50']:.3f} ms{ci_txt}, p90 {lat['p90']:.3f}, p99 {lat['p99']:.3f}, "
                f"mean {lat['mean']:.3f} ± {lat['std']:.3f} ms over {lat['n']} runs; "
                f"{self.throughput_ips:.1f} inferences/s; cold start {self.cold_start_ms['session_ms']:.1f} ms "
                f"+ first run {self.cold_start_ms['first_run_ms']:.2f} ms")


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


def benchmark(model, feed: dict | None = None, **options) -> BenchResult:
    """Benchmark a zoo name or ``.onnx`` path (a fresh session, so cold start is measured).

    Options are :class:`BenchConfig` fields.
    """
    from . import zoo
    from .model import load

    config = BenchConfig(**options)
    t0 = time.perf_counter()
    m = load(model, providers=config.providers, threads=config.threads, optimization=config.optimization)
    session_ms = (time.perf_counter() - t0) * 1e3
    feed = feed if feed is not None else random_feed(m, config.batch_size)
    run, names = m._run, m._output_names  # time the same call Model.run makes, minus nothing
    m.run(feed)  # validates the feed once with teaching errors; also the first inference
    first_ms = (time.perf_counter() - t0) * 1e3 - session_ms

    clock = time.perf_counter
    start = clock()
    n = 0
    while n < config.warmup_runs or clock() - start < config.warmup_s:
        run(names, feed, None)
        n += 1
        if clock() - start > config.max_s:
            break
    samples = []
    start = clock()
    while len(samples) < config.min_runs or clock() - start < config.min_s:
        t = clock()
        run(names, feed, None)
        samples.append(clock() - t)
        if t - start > config.max_s:
            break
    total = clock() - start
    ms = [s * 1e3 for s in samples]
    import onnxruntime as ort

    return BenchResult(
        model=m.name,
        model_sha256=zoo.file_sha256(m.path),
        config=config,
        cold_start_ms={"session_ms": session_ms, "first_run_ms": first_ms},
        latency_ms=summarize(ms),
        throughput_ips=len(ms) * config.batch_size / total,
        samples_ms=ms,
        environment={"onnxruntime": ort.__version__, "providers": m.providers,
                     "python": platform.python_version(), "machine": platform.machine()},
    )
