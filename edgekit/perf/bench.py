"""``edgekit.benchmark``: timing an ONNX model the way a careful researcher would.

The timing loop (TFLite's benchmark_model rule: warm-up and measured phases each bounded by runs
AND seconds, capped by ``max_s``/``max_runs``) lives in :mod:`edgekit.perf.loop` and times any
callable (:func:`time_call`); :func:`benchmark` loads the model and hands it its ``run``. Cold start (session creation and the first
inference) is reported apart from warm latency. Every sample is kept, with the device
fingerprint, versions, model sha256, the full configuration, memory, CPU time, and what a
background sampler saw (frequency, temperature, CPU pressure) — a contaminated run is flagged.

Timing: one ``time.perf_counter()`` pair around each call of ``InferenceSession._sess.run``, the
C++ binding ``Model.run`` calls (``timed="binding"``, the default); ``timed="public"`` times the
public ``InferenceSession.run`` instead, whose Python checks cost about 1 us more per call
(recorded in the result's ``timed``). N independent runs, a process each:
:func:`edgekit.perf.runs.run_repeated` (``edgekit bench --repeat N``). Percentiles and confidence intervals: see :mod:`edgekit.perf.stats`.

>>> r = benchmark("digits-cnn", min_runs=20, min_s=0.05, warmup_s=0.01)
>>> r.latency_ms["n"] >= 20 and r.latency_ms["p50"] > 0
True
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .._errors import ConfigError
from .._io import file_sha256
from .loop import run_loop

SCHEMA_VERSION = 1
MODES = ("latency", "throughput")
TIMED = {"binding": "InferenceSession._sess.run (C++ binding)", "public": "InferenceSession.run (public API)"}


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
    timed: str = "binding"  # what the loop calls: a key of TIMED

    def label(self) -> str:
        return config_label(asdict(self))


def config_label(cfg: dict) -> str:
    """The one short label of a configuration (a :class:`BenchConfig` or a result's ``config``
    dict), e.g. ``threads=2 cpu opt=all batch=1 spin=off``; a set of results is named by
    :func:`edgekit.perf.comparison.labels`.

    >>> config_label({"threads": None, "providers": "cpu", "optimization": "all", "batch_size": 1})
    'threads=default cpu opt=all batch=1'
    """
    providers = cfg.get("providers")
    threads = cfg.get("threads", "?")
    parts = [f"threads={'default' if threads is None else threads}",
             "+".join(map(str, providers)) if isinstance(providers, (list, tuple)) else str(providers),
             f"opt={cfg.get('optimization', '?')}", f"batch={cfg.get('batch_size', '?')}"]
    if cfg.get("spin_wait") is not None:
        parts.append(f"spin={'on' if cfg['spin_wait'] else 'off'}")
    if cfg.get("mode") == "throughput":
        parts.append(f"throughput x{cfg.get('concurrency')}/{cfg.get('sessions', 1)}s")
    if cfg.get("timed", "binding") != "binding":
        parts.append(f"timed={cfg['timed']}")
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
    sample_start_s: list[float] = field(default_factory=list, repr=False)  # start of each sample, sampler clock
    schema_version: int = SCHEMA_VERSION
    timed: str = ""  # what one sample times (TIMED[config.timed]); "" for time_call
    started_at: str = ""  # UTC ISO time the benchmark started: tells equal configs apart
    runs: list[dict] = field(default_factory=list, repr=False)  # repeat > 1: each process's own figures
    interleaved: str = ""  # results with the same id had their runs take turns (a sweep with repeat > 1)
    repeat: dict[str, Any] = field(default_factory=dict, repr=False)  # --repeat auto: its plan and the CI it reached

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lat = self.latency_ms
        ci = lat.get("p50_ci")
        scale, unit = time_unit(lat["p50"])
        f = lambda v: f"{v * scale:.3g}" if abs(v * scale) >= 100 else f"{v * scale:.3f}"
        ci_txt = f" (95% CI {f(ci[0])}-{f(ci[1])}{' over runs' if self.runs else ''})" if ci else ""
        over = f"{lat['n']} samples in {len(self.runs)} processes" if self.runs else f"{lat['n']} runs"
        text = (f"{self.model}: p50 {f(lat['p50'])} {unit}{ci_txt}, p90 {f(lat['p90'])}, p99 {f(lat['p99'])}, "
                f"mean {f(lat['mean'])} ± {f(lat['std'])} {unit} over {over}; "
                f"{self.throughput_ips:.1f} inferences/s; cold start {self.cold_start_ms['session_ms']:.1f} ms "
                f"+ first run {self.cold_start_ms['first_run_ms']:.2f} ms")
        from .verdict import verdict

        if lat.get("n_marked") and lat.get("p99_unmarked") is None:
            text += "; every sample overlapped a disturbance"
        elif lat.get("n_marked"):
            text += (f"; without the {lat['n_marked']} marked samples p90 {f(lat['p90_unmarked'])}, "
                     f"p99 {f(lat['p99_unmarked'])} {unit}")
        text += f"  [{verdict(self.suspect)}]"
        plan = self.repeat
        if plan and not plan.get("reached"):
            text += (f"\n  note: CI +-{plan['ci_half_width']:.1%} over {plan['runs']} runs, not the +-{plan['target']:.0%} "
                     f"aimed at: this machine's p50 moved {plan['first_spread']:.1%} between runs, so that needs "
                     f"{plan['needed']} runs and {plan['budget_s']:g} s fit {plan['fits']}. For a narrower CI "
                     f"--repeat {plan['needed']}; to compare configs, --ab (interleaved: a shared drift cancels)")
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


def benchmark(model, feed: dict | None = None, *, progress: bool = False, **options) -> BenchResult:
    """Benchmark a zoo name or ``.onnx`` path (fresh sessions, so cold start is measured) in this
    process: one run. N independent runs (processes): :func:`edgekit.perf.runs.run_repeated`.

    Options are :class:`BenchConfig` fields, e.g. ``threads=2, spin_wait=False, batch_size=8,
    mode="throughput", concurrency=4, timed="public"``. ``progress=True`` shows a progress bar on a terminal.
    """
    import psutil

    from ..runtime.device import device_info
    from ..runtime.model import load

    cfg = _config(options)
    started = _now()
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
    if cfg.timed == "public":
        calls = [lambda r=x.session.run, names=x._output_names: r(names, feed) for x in models]
    else:
        calls = [lambda r=x._run, names=x._output_names: r(names, feed, None) for x in models]
    timed = run_loop(calls, cfg, label=f"{m.name} {cfg.label()}", progress=progress)
    timed["memory"]["session_rss_increment_bytes"] = rss_session

    return BenchResult(
        model=m.name,
        model_sha256=file_sha256(m.path),
        config=cfg,
        cold_start_ms={"session_ms": session_ms, "first_run_ms": first_ms},
        **timed,
        device=device_info().to_dict(),
        environment=_environment(providers=m.providers,
                                 provider_reason=m.provider_choice.reason if m.provider_choice else None),
        timed=TIMED[cfg.timed], started_at=started,
    )


def time_call(fn: Callable[[], Any], *, name: str | None = None, progress: bool = False, **options) -> BenchResult:
    """Time any callable with the loop :func:`benchmark` uses (the "system under test" is ``fn``).

    Options are the loop's :class:`BenchConfig` fields (``min_runs``, ``min_s``, ``mode``,
    ``concurrency``, ``batch_size`` for inferences per call...); the model-loading fields
    (``threads``, ``providers``, ``optimization``, ``spin_wait``, ``sessions``) describe nothing
    here. The first call is the cold start (``session_ms`` is 0: there is no session), and
    ``model_sha256`` is empty.

    >>> r = time_call(lambda: sum(range(100)), name="sum", min_runs=20, min_s=0.01, warmup_s=0.0)
    >>> r.model, r.latency_ms["n"] >= 20, r.throughput_ips > 0
    ('sum', True, True)
    """
    from ..runtime.device import device_info

    cfg = _config(options)
    started = _now()
    t0 = time.perf_counter()
    fn()
    first_ms = (time.perf_counter() - t0) * 1e3
    label = name or getattr(fn, "__qualname__", None) or repr(fn)
    return BenchResult(
        model=label, model_sha256="", config=cfg, cold_start_ms={"session_ms": 0.0, "first_run_ms": first_ms},
        **run_loop([fn], cfg, label=label, progress=progress),
        device=device_info().to_dict(), environment=_environment(), timed=f"the callable {label}", started_at=started,
    )


def _config(options: dict) -> BenchConfig:
    cfg = BenchConfig(**options)
    if cfg.mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    if cfg.timed not in TIMED:
        raise ConfigError(f"timed must be one of {tuple(TIMED)}, got {cfg.timed!r}")
    return cfg


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def time_unit(ms: float) -> tuple[float, str]:
    """The factor and unit that print a time of this magnitude (in ms) readably: us below 1 ms.

    >>> time_unit(0.0102), time_unit(5.8), time_unit(2500.0)
    ((1000.0, 'us'), (1.0, 'ms'), (0.001, 's'))
    """
    if ms < 1.0:
        return 1e3, "us"
    if ms >= 1000.0:
        return 1e-3, "s"
    return 1.0, "ms"


def _environment(**runtime) -> dict[str, Any]:
    import onnxruntime as ort

    from .._version import __version__

    return {"edgekit": __version__, "onnxruntime": ort.__version__, **runtime,
            "python": platform.python_version(), "machine": platform.machine()}
