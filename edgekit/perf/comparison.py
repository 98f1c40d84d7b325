"""Compare benchmark results: is B really faster than A, and by how much?

The figure is the **speed ratio** ``median(A) / median(B)`` of the raw latency samples, with A the
baseline: above 1 means B is faster (2.0 = B takes half the time), below 1 means B is slower.
Its 95% CI is a percentile bootstrap: resample A's and B's samples independently with
replacement ``n_boot`` times, take the ratio of the two medians each time, and keep the 2.5% and
97.5% percentiles of those ratios. The difference is called significant when the CI excludes 1.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> def result(name, scale):
...     s = (scale * rng.lognormal(0, 0.1, 300)).tolist()
...     return {"schema_version": 1, "model": name, "config": {}, "samples_ms": s,
...             "latency_ms": {"n": len(s)}}
>>> print(compare(result("old", 1.3), result("new", 1.0)).verdict)
new is 1.29x faster than old (95% CI 1.26-1.32)

That CI sees only the noise *within* one run per side. Results of ``edgekit bench --repeat N``
(or ``--ab``, whose blocks are runs) keep each run's samples under ``runs``; when both sides have
at least 2 runs the figure of a side is the geometric mean of its runs' medians and the CI is
:func:`edgekit.perf.stats.hierarchical_ratio_ci` (runs resampled, then samples within runs), which
sees run-to-run variation too. Sides measured apart (two separate commands, not one ``--ab`` or
one sweep) count as one draw of the machine's state each (``apart=True``), so the CI widens to a
single run's spread per side and a warning says so. A single-run comparison says so in its warnings. Whatever the
method, a CI that lies inside the equivalence band ``min_effect`` (default 2%:
``1/1.02 <= CI <= 1.02``) gives the verdict "no meaningful difference".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._errors import ResultError
from .stats import hierarchical_ratio_ci

SUPPORTED_SCHEMAS = (1,)  # the BenchResult.to_dict() schema versions this module reads
MIN_SAMPLES = 30  # below this the bootstrap of a median is coarse and the CI wide
MIN_EFFECT = 0.02  # a CI inside 1/(1+m) .. 1+m: "no meaningful difference"
SINGLE_RUN = ("one run per side: this CI sees only the noise within each run, not the variation between "
              "processes (p50 moved ~9% between runs of one config on a shared VM) — "
              "use `edgekit bench --repeat N` results or `--ab` for a claim")
NOT_INTERLEAVED = ("measured one after the other, not interleaved: a shift of the machine between the two "
                   "measurements moves with the setting, so the CI counts each side as one draw of the machine's "
                   "state (spread: its run-to-run spread) and is wider than an interleaved one — for a tight "
                   "claim, interleave: `edgekit bench MODEL --ab CONFIG_A CONFIG_B`")
_CHUNK = 4_000_000  # bootstrap resample elements held in memory at once (~32 MB of float64)


def load_results(paths: str | Path | Iterable[str | Path]) -> list[dict]:
    """Read result files (each one result object or a list of them, a sweep) into one list.

    A folder stands for every ``*.json`` result under it, sorted by path (``edgekit compare fleet/``);
    other JSON found there (a ``fleet.json`` summary) is left out. Each result gets ``"_source"``
    (the file it came from) for labels; it is not part of the schema.

    >>> load_results("no/such/file.json")
    Traceback (most recent call last):
    ...
    edgekit._errors.ResultError: no result file at 'no/such/file.json' ...
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            found = [r for f in sorted(path.rglob("*.json")) for r in _results_in(f)]
            if not found:
                raise ResultError(f"no benchmark results under the folder '{path}' — expected *.json files "
                                  f"written by `edgekit bench --suite ... --out {path}`")
            out += found
            continue
        if not path.is_file():
            raise ResultError(f"no result file at '{path}' — expected a JSON file written by "
                              f"`edgekit bench MODEL --json {path.name}`; check the path")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ResultError(f"'{path}' is not JSON ({e}) — expected a result saved with "
                              f"`edgekit bench MODEL --json out.json` or BenchResult.to_dict()") from e
        out += _results_of(path, data)
    return out


def _results_of(path: Path, data) -> list[dict]:
    """The results in the parsed contents ``data`` of the file ``path``, each checked and given ``_source``."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ResultError(f"'{path}' holds an empty list — expected at least one result")
    for i, item in enumerate(items):
        _check(item, f"'{path}'" + (f" item {i}" if isinstance(data, list) else ""))
    return [{**item, "_source": str(path)} for item in items]


def _results_in(path: Path) -> list[dict]:
    """The results in one file found in a folder; [] for JSON that is not a result (a summary)."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) and "samples_ms" in i and "latency_ms" in i for i in items):
        return []
    return _results_of(path, data)  # parsed once


def _check(item, where: str) -> None:
    if not isinstance(item, dict) or "latency_ms" not in item or "samples_ms" not in item:
        got = sorted(item)[:8] if isinstance(item, dict) else type(item).__name__
        raise ResultError(f"{where} is not an edgekit benchmark result: expected keys 'latency_ms' and "
                          f"'samples_ms', got {got} — pass files written by `edgekit bench --json`")
    version = item.get("schema_version")
    if version not in SUPPORTED_SCHEMAS:
        newer = isinstance(version, int) and version > max(SUPPORTED_SCHEMAS)
        hint = "upgrade edgekit (pip install -U edgekit)" if newer else "re-run the benchmark with this edgekit"
        raise ResultError(f"{where} has schema_version {version!r}, this edgekit reads "
                          f"{list(SUPPORTED_SCHEMAS)} — {hint}")


def device_name(result: dict) -> str:
    """The board a result came from: its fleet board (``edgekit bench --scheduler``), else the device's
    board or CPU model, else its fingerprint ("" when the result says nothing about its device)."""
    dev = result.get("device") or {}
    return str((result.get("fleet") or {}).get("board") or dev.get("board") or dev.get("cpu_model")
               or dev.get("fingerprint") or "")


def _device_key(result: dict) -> tuple:
    return (result.get("fleet") or {}).get("board"), (result.get("device") or {}).get("fingerprint")


def device_names(results: Sequence[dict]) -> list[str] | None:
    """One name per result when the results come from more than one device, else None.

    >>> device_names([{"fleet": {"board": "pi5"}}, {"fleet": {"board": "jetson"}}])
    ['pi5', 'jetson']
    """
    keys = [_device_key(r) for r in results]
    if len(set(keys) - {(None, None)}) < 2:  # results that say nothing of their device count as no other
        return None
    names = [device_name(r) or "?" for r in results]
    if len(set(names)) < len(set(keys)):  # two devices of one name: tell them apart by fingerprint
        names = [f"{n}/{k[1]}" if k[1] else n for n, k in zip(names, keys)]
    return names


def labels(results: Sequence[dict]) -> list[str]:
    """Short names: the model, plus the config values that differ (``mnist threads=2``), plus the device
    when the results come from several (``mnist threads=2 @pi5``); equal ones get their file, else
    their start time (``started_at``), else their position (``#1``).

    >>> labels([{"model": "m", "config": {"threads": 1}}, {"model": "m", "config": {"threads": 2}}])
    ['m threads=1', 'm threads=2']
    """
    names = [str(r.get("model", "?")) for r in results]
    configs = [r.get("config") or {} for r in results]
    keys = sorted({k for c in configs for k in c})
    differ = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in configs}) > 1]
    out = [" ".join([n, *(f"{k}={_short(c.get(k))}" for k in differ)]) for n, c in zip(names, configs)]
    devices = device_names(results)
    if devices:
        out = [f"{o} @{d}" for o, d in zip(out, devices)]
    if len(set(out)) < len(out):  # same model and config: fall back on the file, the start time, the position
        out = [f"{o} ({Path(r['_source']).stem})" if "_source" in r else o for o, r in zip(out, results)]
    if len(set(out)) < len(out) and all(r.get("started_at") for r in results):
        out = [f"{o} {_clock(r['started_at'])}" for o, r in zip(out, results)]
    if len(set(out)) < len(out):
        out = [f"{o} #{i}" for i, o in enumerate(out)]
    return out


def _clock(iso: str) -> str:
    """``2026-12-06T06:21:28.612+00:00`` -> ``06:21:28.612`` (the date when it is all one can tell apart)."""
    return iso[11:23] if len(iso) >= 23 else iso


def _short(v) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                       alpha: float = 0.05) -> tuple[float, float]:
    """Percentile-bootstrap CI of ``median(a) / median(b)``, resampling a and b independently."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_boot)
    step = max(1, _CHUNK // max(a.size, b.size))  # rows per chunk, so memory stays bounded
    for start in range(0, n_boot, step):
        rows = min(step, n_boot - start)
        med_a = np.median(a[rng.integers(0, a.size, (rows, a.size))], axis=1)
        med_b = np.median(b[rng.integers(0, b.size, (rows, b.size))], axis=1)
        ratios[start:start + rows] = med_a / med_b
    lo, hi = np.percentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


@dataclass
class Comparison:
    """B (``other``) against A (``baseline``); ``ratio`` = median(A)/median(B), > 1 means B is faster."""

    baseline: str
    other: str
    baseline_p50_ms: float
    other_p50_ms: float
    ratio: float
    ci: tuple[float, float]
    confidence: float = 0.95
    n_boot: int = 2000
    seed: int = 0
    warnings: list[str] = field(default_factory=list)
    min_effect: float = MIN_EFFECT
    runs: tuple[int, int] = (1, 1)  # runs behind each side; >= 2 each: hierarchical CI
    method: str = "bootstrap of samples (one run per side)"
    conditions: str = ""  # each side's clean/suspect word (edgekit.perf.verdict)

    @property
    def significant(self) -> bool:
        """True when the CI of the ratio excludes 1.0."""
        return self.ci[0] > 1.0 or self.ci[1] < 1.0

    @property
    def equivalent(self) -> bool:
        """True when the CI lies inside the equivalence band ``1/(1+min_effect) .. 1+min_effect``."""
        return self.min_effect > 0 and self.ci[0] >= 1 / (1 + self.min_effect) and self.ci[1] <= 1 + self.min_effect

    @property
    def different(self) -> bool:
        """True when the verdict says faster or slower: the CI excludes 1 and is not inside the band."""
        return self.significant and not self.equivalent

    @property
    def verdict(self) -> str:
        lo, hi = self.ci
        pct = f"{self.confidence:.0%}"
        if self.equivalent:
            return (f"no meaningful difference ({self.other}/{self.baseline} speed ratio {self.ratio:.3f}, "
                    f"{pct} CI {lo:.3f}-{hi:.3f}, inside +-{self.min_effect:.0%})")
        if not self.significant:
            return (f"no significant difference ({self.other}/{self.baseline} speed ratio {self.ratio:.2f}, "
                    f"{pct} CI {lo:.2f}-{hi:.2f})")
        if self.ratio > 1:
            return f"{self.other} is {self.ratio:.2f}x faster than {self.baseline} ({pct} CI {lo:.2f}-{hi:.2f})"
        # slower: report the slow-down factor 1/ratio; its CI is the reciprocal interval, flipped
        return f"{self.other} is {1 / self.ratio:.2f}x slower than {self.baseline} ({pct} CI {1 / hi:.2f}-{1 / lo:.2f})"

    def to_dict(self) -> dict:
        return {**asdict(self), "ci": list(self.ci), "runs": list(self.runs), "significant": self.significant,
                "equivalent": self.equivalent, "different": self.different, "verdict": self.verdict}

    def __str__(self) -> str:
        head = f"{self.verdict}  [{self.conditions}]" if self.conditions else self.verdict
        how = [f"  CI over runs ({self.runs[0]} and {self.runs[1]}): {self.method}"] if min(self.runs) >= 2 else []
        return "\n".join([head, *how, *(f"  warning: {w}" for w in self.warnings)])


def compare(baseline: dict, other: dict, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
            names: tuple[str, str] | None = None, min_effect: float = MIN_EFFECT,
            interleaved: bool = False) -> Comparison:
    """Compare ``other`` (B) with ``baseline`` (A) from their raw samples; see the module docstring.

    ``min_effect``: the equivalence band (0.02: a CI inside 0.98-1.02 is "no meaningful difference";
    0 turns the band off). ``interleaved``: the two sides' runs took turns (``--ab``); otherwise a
    comparison over runs warns that a shift of the machine between the sides is not in its CI."""
    if not 0 <= min_effect <= 1:
        raise ValueError(f"min_effect is a fraction like 0.02 (2%), got {min_effect!r}")
    a_name, b_name = names or labels([baseline, other])
    a, b = _samples(baseline, a_name), _samples(other, b_name)
    runs_a, runs_b = run_samples(baseline), run_samples(other)
    warnings = _warnings(baseline, other, a_name, b_name)
    common = {"confidence": 1 - alpha, "n_boot": n_boot, "seed": seed, "min_effect": min_effect,
              "runs": (len(runs_a), len(runs_b))}
    from .verdict import verdict

    conditions = f"{a_name}: {verdict(baseline)}; {b_name}: {verdict(other)}"
    if len(runs_a) >= 2 and len(runs_b) >= 2:
        apart = not (interleaved or baseline.get("interleaved") and baseline.get("interleaved") == other.get("interleaved"))
        ratio, ci = hierarchical_ratio_ci(runs_a, runs_b, n_boot=n_boot, seed=seed, alpha=alpha, apart=apart)
        gm_a, gm_b = (float(np.exp(np.mean([np.log(np.median(r)) for r in rs]))) for rs in (runs_a, runs_b))
        if apart:
            warnings.append(NOT_INTERLEAVED)
        method = ("hierarchical bootstrap (runs, then samples within runs)" +
                  ("; measured apart: each side one draw of the machine's state" if apart else ""))
        return Comparison(a_name, b_name, gm_a, gm_b, ratio, ci, warnings=warnings, method=method,
                          conditions=conditions, **common)
    ratio = float(np.median(a) / np.median(b))
    ci = bootstrap_ratio_ci(a, b, n_boot=n_boot, seed=seed, alpha=alpha)
    return Comparison(a_name, b_name, float(np.median(a)), float(np.median(b)), ratio, ci,
                      warnings=[*warnings, SINGLE_RUN], conditions=conditions, **common)


def run_samples(result: dict) -> list[np.ndarray]:
    """The samples of each independent run behind a result: its ``runs`` (``bench --repeat``, an A/B
    side's blocks: each run's ``n_samples`` slice of the pooled ``samples_ms``, or, in older files, the
    run's own ``samples_ms``), or its own ``samples_ms`` as one run."""
    pooled = np.asarray(result.get("samples_ms") or [], dtype=float)
    meta = result.get("runs") or []
    if meta and all("n_samples" in r for r in meta) and sum(r["n_samples"] for r in meta) == pooled.size:
        runs = np.split(pooled, np.cumsum([r["n_samples"] for r in meta])[:-1])
    else:
        runs = [np.asarray(r.get("samples_ms") or [], dtype=float) for r in meta]
    runs = [r for r in runs if r.size and np.all(r > 0)]
    return runs or [pooled]


def compare_many(results: Sequence[dict], *, by_device: bool | None = None, **options) -> list[Comparison]:
    """Compare every result with the first (the baseline); options as :func:`compare`.

    Results from several devices that ran the same benchmarks (a fleet folder) are put side by side
    instead: each benchmark on each device against the same benchmark on the first result's device.
    ``by_device=None`` does so when such pairs exist; ``False`` keeps "everything against the first".
    """
    if len(results) < 2:
        raise ResultError(f"need at least 2 results to compare, got {len(results)} — pass a baseline and another")
    names = labels(results)
    pairs = _device_pairs(results) if by_device is not False and device_names(results) else []
    if by_device and not pairs:
        raise ResultError("by_device: no benchmark (same model and config) ran on two devices — "
                          "give results of the same suite from several boards")
    pairs = pairs or [(0, i) for i in range(1, len(results))]
    return [compare(results[a], results[b], names=(names[a], names[b]), **options) for a, b in pairs]


def _device_pairs(results: Sequence[dict]) -> list[tuple[int, int]]:
    """(baseline, other) indices: the same model and config on different devices, the first device first."""
    jobs: dict[str, list[int]] = {}
    for i, r in enumerate(results):
        key = json.dumps([r.get("model"), r.get("model_sha256"), r.get("config")], sort_keys=True, default=str)
        jobs.setdefault(key, []).append(i)
    first = _device_key(results[0])
    pairs = []
    for idx in jobs.values():
        base = next((i for i in idx if _device_key(results[i]) == first), idx[0])
        pairs += [(base, i) for i in idx if i != base and _device_key(results[i]) != _device_key(results[base])]
    return pairs


def _samples(result: dict, name: str) -> np.ndarray:
    s = np.asarray(result.get("samples_ms") or [], dtype=float)
    if s.size == 0 or not np.all(s > 0):
        raise ResultError(f"{name}: expected positive latency samples in 'samples_ms', got {s.size} "
                          f"(min {s.min() if s.size else None}) — re-run the benchmark")
    return s


def _warnings(a: dict, b: dict, a_name: str, b_name: str) -> list[str]:
    out = []
    fa, fb = ((r.get("device") or {}).get("fingerprint") for r in (a, b))
    if fa and fb and fa != fb and (a.get("model"), a.get("config")) != (b.get("model"), b.get("config")):
        out.append(f"results come from different devices: {fa} vs {fb} — a ratio mixes device and setting")
    if a.get("model") == b.get("model") and a.get("model_sha256") and b.get("model_sha256") \
            and a["model_sha256"] != b["model_sha256"]:
        out.append(f"both are named '{a['model']}' but the files differ (sha256 {a['model_sha256'][:12]} vs "
                   f"{b['model_sha256'][:12]}) — are these two versions of the model?")
    for r, name in ((a, a_name), (b, b_name)):
        suspect = r.get("suspect") or {}
        if suspect.get("is_suspect"):
            reasons = "; ".join(suspect.get("reasons") or []) or "no reason given"
            out.append(f"{name} is marked suspect: {reasons} — re-run it before trusting the ratio")
        n = len(r.get("samples_ms") or [])
        if n < MIN_SAMPLES:
            out.append(f"{name} has only {n} samples (< {MIN_SAMPLES}): the CI is wide and rough — "
                       f"run longer (min_runs=100 or more)")
    return out


def _words(conditions: str) -> str:
    """'A: suspect: CPU pressure (...); B: clean' -> 'base: suspect\nother: clean' for a narrow column."""
    sides = [s.split(": ", 1)[-1] for s in conditions.split("; ")] if conditions else []
    return "\n".join(f"{who}: {s.split(':')[0].split(' (')[0]}" for who, s in zip(("base", "other"), sides)) or "-"


def comparison_table(comparisons: Sequence[Comparison]):
    """A rich Table, one row per comparison (print it with ``rich.print``)."""
    from rich.table import Table

    t = Table(title="speed ratio = median(baseline) / median(other); > 1: other is faster",
              title_justify="left")
    for col in ("baseline", "other", "p50 base ms", "p50 other ms", "ratio", "95% CI", "runs", "verdict", "conditions",
                "warnings"):
        extra = {"min_width": 10, "overflow": "fold"} if col == "conditions" else {}  # never squeezed to "…"
        t.add_column(col, justify="right" if "ms" in col or col in ("ratio", "95% CI") else "left", **extra)
    for c in comparisons:
        word = ("no meaningful diff." if c.equivalent else
                ("[green]faster[/]" if c.ratio > 1 else "[red]slower[/]") if c.significant else "no sig. diff.")
        t.add_row(c.baseline, c.other, f"{c.baseline_p50_ms:.3f}", f"{c.other_p50_ms:.3f}", f"{c.ratio:.2f}",
                  f"{c.ci[0]:.2f}-{c.ci[1]:.2f}", f"{c.runs[0]}/{c.runs[1]}", word, _words(c.conditions),
                  "\n".join(c.warnings) or "-")
    return t
