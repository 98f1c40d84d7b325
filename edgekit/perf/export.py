"""Benchmark results out to a spreadsheet (CSV) or a compact terminal table.

One row per result; optional fields a result lacks (``memory``, ``energy``, ``device``...) are
left empty, never invented.

>>> import io
>>> r = {"model": "m", "config": {"threads": 2}, "latency_ms": {"n": 3, "p50": 1.5, "p50_ci": None}}
>>> f = io.StringIO(); to_csv([r], f)
>>> f.getvalue().splitlines()[1].startswith("m,2,")
True
"""

from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path
from typing import IO, Any, Sequence

from .bench import BenchConfig, config_label, time_unit

CONFIG_FIELDS = tuple(f.name for f in fields(BenchConfig))  # every config field is a column
FIELDS = ("model", *CONFIG_FIELDS, "timed_call", "runs", "started_at", "n", "min", "mean", "std",
          "p50", "p50_ci_lo", "p50_ci_hi", "p90", "p95", "p99", "throughput_ips", "session_ms",
          "first_run_ms", "peak_rss_bytes", "cpu_s_per_inference", "joules_per_inference", "suspect",
          "device_fingerprint", "model_sha256")


def _get(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...`` or None when any level is missing (optional fields may be absent)."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def row(result: Any) -> dict[str, Any]:
    """The CSV row of one result (a dict or anything with ``to_dict()``); missing fields are ``""``."""
    r = result.to_dict() if hasattr(result, "to_dict") else result
    lat = r.get("latency_ms") or {}
    ci = lat.get("p50_ci") or (None, None)
    providers = _get(r, "config", "providers")
    suspect = _get(r, "suspect", "is_suspect")
    values = {
        "model": r.get("model"), **{k: _get(r, "config", k) for k in CONFIG_FIELDS},
        "providers": "+".join(map(str, providers)) if isinstance(providers, (list, tuple)) else providers,
        "timed_call": r.get("timed"), "runs": len(r.get("runs") or []) or 1, "started_at": r.get("started_at"),
        **{k: lat.get(k) for k in ("n", "min", "mean", "std", "p50", "p90", "p95", "p99")},
        "p50_ci_lo": ci[0], "p50_ci_hi": ci[1], "throughput_ips": r.get("throughput_ips"),
        "session_ms": _get(r, "cold_start_ms", "session_ms"), "first_run_ms": _get(r, "cold_start_ms", "first_run_ms"),
        "peak_rss_bytes": _get(r, "memory", "peak_rss_bytes"), "cpu_s_per_inference": r.get("cpu_s_per_inference"),
        "joules_per_inference": _get(r, "energy", "joules_per_inference"),
        "suspect": None if suspect is None else ("yes" if suspect else "no"),
        "device_fingerprint": _get(r, "device", "fingerprint"), "model_sha256": r.get("model_sha256"),
    }
    return {k: "" if values[k] is None else values[k] for k in FIELDS}


def to_csv(results: Sequence[Any], path_or_file: str | Path | IO[str]) -> None:
    """Write one CSV row per result (columns: :data:`FIELDS`) to a path or an open text file."""
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "w", newline="") as f:  # newline="": the csv module writes its own \r\n
            to_csv(results, f)
        return
    writer = csv.DictWriter(path_or_file, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(row(r) for r in results)


def results_table(results: Sequence[Any]):
    """A compact rich Table: model, config, runs, p50 [95% CI], p90, p99 (each row in us, ms or s by
    its magnitude), inferences/s, suspect mark."""
    from rich.table import Table

    t = Table(title="latency (unit per row); conditions: clean, or suspect and why (see its 'suspect' reasons)",
              title_justify="left")
    for col in ("model", "config", "runs", "p50 [95% CI]", "p90", "p99", "unit", "inf/s", "conditions"):
        t.add_column(col, justify="left" if col in ("model", "config", "unit", "conditions") else "right")
    for res in results:
        r = res.to_dict() if hasattr(res, "to_dict") else res
        lat = r.get("latency_ms") or {}
        ci = lat.get("p50_ci")
        scale, unit = time_unit(lat.get("p50") or 1.0)
        fmt = lambda v, spec=".3f", scale=scale: "-" if v is None else format(v * scale, spec)  # noqa: E731
        p50 = fmt(lat["p50"]) + (f" [{fmt(ci[0])}-{fmt(ci[1])}]" if ci else "") if "p50" in lat else "-"
        from .verdict import verdict

        word = verdict(r)
        mark = f"[red]{word}[/]" if word != "clean" else word
        t.add_row(str(r.get("model", "?")), config_label(r.get("config") or {}), str(len(r.get("runs") or []) or 1),
                  p50, fmt(lat.get("p90")), fmt(lat.get("p99")), unit,
                  "-" if r.get("throughput_ips") is None else f"{r['throughput_ips']:.1f}", mark)
    return t
