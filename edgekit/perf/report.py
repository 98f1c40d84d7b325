"""``edgekit report``: benchmark results as one self-contained HTML file.

Everything is inline (CSS, and PNG charts as base64 ``data:`` URIs), so the file can be mailed,
attached to a lab hand-in or opened offline. Charts: latency histogram and empirical CDF (all
results overlaid), a timeline per result (with CPU frequency and temperature when a sampler ran),
a thread-scaling curve when results differ only in ``threads``, and per-op-type time when a
profile is given.

>>> write_report([json.load(open("bench.json"))], "report.html")  # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ResultError
from .._extras import require
from .bench import config_label, time_unit
from .comparison import device_names, labels

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f0f0f0}td.l{text-align:left}tr.suspect{background:#fff3cd}.warn{color:#a33;font-weight:bold}
img{max-width:100%;display:block;margin:1em 0}figure{margin:0}figcaption{color:#555;font-size:.9em}"""


def _pyplot():
    mpl = require("matplotlib", extra="lab", purpose="edgekit report")
    mpl.use("Agg")  # render to memory only: never open a window, works on headless boards
    import matplotlib.pyplot as plt
    return plt


def _png_uri(plt, fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)  # pyplot keeps every open figure alive otherwise
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _device_text(r: dict) -> str:
    dev, fleet = r.get("device") or {}, r.get("fleet") or {}
    text = str(dev.get("board") or dev.get("cpu_model") or dev.get("fingerprint") or
               (r.get("environment") or {}).get("machine") or "")
    if fleet.get("board"):  # benchmarked on a fleet board: its label and worker first
        text = f"{fleet['board']} ({fleet.get('worker', '?')} on {fleet.get('host', '?')}) {text}".strip()
    fp = dev.get("fingerprint")
    return f"{text} [{fp}]" if fp and fp not in text else text


def _suspect_reasons(r: dict) -> list[str]:
    s = r.get("suspect") or {}
    reasons = [str(x) for x in s.get("reasons") or []]
    return reasons or (["flagged suspect (no reason given)"] if s.get("is_suspect") else [])


def _headline(results: list[dict]) -> str:
    """One line per result, p50 with its clean/suspect word, and the sensors the device lacked (said once)."""
    from .verdict import sensors_note, verdict

    e = html.escape
    items = "".join(f"<li>{e(r['_label'])}: p50 {(r.get('latency_ms') or {}).get('p50', float('nan')):.4g} ms "
                    f"<b class=\"{'warn' if verdict(r) != 'clean' else ''}\">[{e(verdict(r))}]</b></li>" for r in results)
    note = sensors_note(results)
    return f'<ul class="headline">{items}</ul>' + (f'<p class="note">{e(note)}</p>' if note else "")


def _summary_table(results: list[dict]) -> str:
    e = html.escape
    from .verdict import verdict

    head = ("result", "config", "runs", "p50 [95% CI]", "p90", "p99", "throughput /s",
            "cold start ms (session + first run)", "device", "conditions", "warnings")
    rows = ["<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for r in results:
        lat, cold = r.get("latency_ms") or {}, r.get("cold_start_ms") or {}
        ci = lat.get("p50_ci")
        factor, unit = time_unit(lat.get("p50") or 1.0)
        t = lambda v: f"{v * factor:.3f} {unit}"  # noqa: E731  units by magnitude: 10.2 us, not 0.010 ms
        p50 = t(lat.get("p50", float("nan"))) + (f" [{ci[0] * factor:.3f}, {ci[1] * factor:.3f}]" if ci else "")
        reasons = _suspect_reasons(r)
        cells = [(r.get("_label") or r.get("model", "?"), "l"), (config_label(r.get("config") or {}), "l"),
                 (str(len(r.get("runs") or []) or 1), ""), (p50, ""),
                 (t(lat.get("p90", float("nan"))), ""), (t(lat.get("p99", float("nan"))), ""),
                 (f"{r.get('throughput_ips', float('nan')):.1f}", ""),
                 (f"{cold.get('session_ms', float('nan')):.1f} + {cold.get('first_run_ms', float('nan')):.2f}", ""),
                 (_device_text(r), "l"), (verdict(r), "l")]
        tds = "".join(f'<td class="{c}">{e(str(v))}</td>' for v, c in cells)
        warn = "<br>".join(f'<span class="warn">⚠ {e(x)}</span>' for x in reasons)
        rows.append(f'<tr class="{"suspect" if reasons else ""}">{tds}<td class="l">{warn}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


MIXED_SCALE = 10.0  # medians this many times apart: log axes, or a 12 us model is squashed at 0 beside a 5 ms one


def _scale(results: list[dict]) -> tuple[float, str, bool]:
    """The factor and unit for the results' samples (by their smallest median) and whether their
    medians are far enough apart to need a log axis."""
    medians = [float(np.median(r["samples_ms"])) for r in results]
    factor, unit = time_unit(min(medians))
    return factor, unit, max(medians) / max(min(medians), 1e-12) > MIXED_SCALE


def _histogram(plt, results: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(9, 4))
    factor, unit, mixed = _scale(results)
    everything = np.concatenate([np.asarray(r["samples_ms"], float) for r in results]) * factor
    # a few huge outliers would squash every bar into one; clip the axis, say so in the title
    lo, hi = float(everything.min()), float(np.percentile(everything, 99.5))
    if mixed:  # log-spaced bins on a log axis: each model keeps its own shape
        bins = np.geomspace(max(lo, 1e-9), max(hi, lo * 1.001), 80)
        ax.set_xscale("log")
    else:
        bins = np.linspace(lo, max(hi, lo + 1e-3), 60)  # identical samples still get a bin width
    for r in results:
        ax.hist(np.clip(np.asarray(r["samples_ms"], float) * factor, None, hi), bins=bins, alpha=0.5,
                histtype="stepfilled", label=r["_label"])
    ax.set(xlabel=f"latency ({unit}{', log scale' if mixed else ''})", ylabel="runs",
           title="Latency histogram (x clipped at overall p99.5)")
    ax.legend(fontsize="small")
    return _png_uri(plt, fig)


def _cdf(plt, results: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(9, 4))
    factor, unit, mixed = _scale(results)
    for r in results:
        a = np.sort(np.asarray(r["samples_ms"], float)) * factor
        ax.step(a, np.arange(1, len(a) + 1) / len(a), where="post", label=r["_label"])
    for q in (0.5, 0.99):
        ax.axhline(q, color="grey", lw=0.7, ls=":")
    if mixed:
        ax.set_xscale("log")
    ax.set(xlabel=f"latency ({unit}{', log scale' if mixed else ''})", ylabel="fraction of runs ≤ x",
           title="Empirical latency CDF", ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return _png_uri(plt, fig)


# every signal a sampler tick may carry, plotted in its own panel when the device has it
SIGNALS = (("pressure_pct", "CPU pressure (PSI some, %)", "tab:orange"),
           ("others_cores", "other processes (cores)", "tab:purple"),
           ("cpu_mhz_mean", "CPU frequency (MHz)", "tab:green"),
           ("temp_c_max", "temperature (°C)", "tab:red"))


def _timeline(plt, r: dict) -> str:
    y = np.asarray(r["samples_ms"], float)
    factor, tunit = time_unit(float(np.median(y)))
    samples = ((r.get("sampler") or {}).get("samples")) or []
    signals = [(key, unit, color, np.array([s.get(key) if s.get(key) is not None else np.nan for s in samples], float))
               for key, unit, color in SIGNALS]
    signals = [sig for sig in signals if not np.all(np.isnan(sig[3]))]
    fig, axes = plt.subplots(1 + len(signals), 1, sharex=True, squeeze=False,
                             figsize=(9, 3.2 + 1.3 * len(signals)), height_ratios=[2.5] + [1] * len(signals))
    ax = axes[0][0]
    x = np.arange(len(y))
    ax.plot(x, y * factor, lw=0.8, color="tab:blue", label="latency")
    marked = ((r.get("suspect") or {}).get("bursts") or {}).get("marked") or []
    for i, (a, b) in enumerate(marked):  # samples that overlapped a disturbance (edgekit.perf.bursts)
        ax.axvspan(a, max(b - 1, a + 0.5), color="tab:red", alpha=0.15, lw=0, label="marked samples" if i == 0 else None)
    from .verdict import verdict

    ax.set(ylabel=f"latency ({tunit})", title=f"Timeline: {r['_label']}  [{verdict(r)}]")
    ax.legend(fontsize="small", loc="upper left")
    if signals:
        # the sampler ticks in seconds; place each tick at the run that was executing at that time
        t = np.array([s.get("t", 0.0) for s in samples], float)
        starts = r.get("sample_start_s") or []
        idx = (np.searchsorted(np.asarray(starts, float), t) if len(starts) == len(y)
               else np.searchsorted(np.cumsum(y) / 1e3, t - t[0]))  # older results: no per-sample start times
        for (key, unit, color, vals), row in zip(signals, axes[1:]):
            row[0].plot(idx, vals, color=color, lw=1.2, marker=".")
            row[0].set_ylabel(unit, color=color, fontsize="small")
            row[0].grid(alpha=0.3)
    axes[-1][0].set_xlabel("run index")
    return _png_uri(plt, fig)


def _scaling_group(results: list[dict]) -> list[dict] | None:
    """The results sorted by threads if they share a model and differ only in threads, else None."""
    if len(results) < 2 or len({r.get("model") for r in results}) != 1:
        return None
    rest = [{k: v for k, v in (r.get("config") or {}).items() if k != "threads"} for r in results]
    threads = [(r.get("config") or {}).get("threads") for r in results]
    if any(c != rest[0] for c in rest) or None in threads or len(set(threads)) != len(threads):
        return None
    return sorted(results, key=lambda r: r["config"]["threads"])


def _scaling(plt, group: list[dict]) -> str:
    t = [r["config"]["threads"] for r in group]
    p50 = np.array([r["latency_ms"]["p50"] for r in group], float)
    cis = [r["latency_ms"].get("p50_ci") or (p, p) for r, p in zip(group, p50)]
    err = np.array([[p - lo for (lo, _), p in zip(cis, p50)], [hi - p for (_, hi), p in zip(cis, p50)]])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(t, p50, yerr=np.clip(err, 0, None), marker="o", capsize=4, label="p50 (95% CI)")
    ax.plot(t, p50[0] * t[0] / np.asarray(t, float), ls="--", color="grey", label="ideal linear scaling")
    ax.set(xlabel="intra-op threads", ylabel="p50 latency (ms)", xticks=t,
           title=f"Thread scaling: {group[0].get('model', '?')}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png_uri(plt, fig)


def _ops(plt, profile: dict, top: int = 15) -> str:
    # per_run_us (one inference's cost) reads better than total_us summed over all runs, if present
    key = "per_run_us" if all("per_run_us" in o for o in profile["op_types"]) else "total_us"
    ops = sorted(profile["op_types"], key=lambda o: o.get(key, 0))[-top:]  # barh: last = top bar
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ops) + 1.2))
    names = [f"{o.get('op_type', '?')} ×{o.get('count', '?')}" for o in ops]
    bars = ax.barh(names, [o.get(key, 0) / 1e3 for o in ops], color="tab:purple")
    ax.bar_label(bars, labels=[f"{100 * o.get('share', 0):.1f}%" for o in ops], padding=3, fontsize="small")
    xlabel = "time per inference (ms)" if key == "per_run_us" else "total time over all runs (ms)"
    ax.set(xlabel=xlabel, ylabel="op type × nodes", title=f"Time per operator type (top {len(ops)})")
    ax.margins(x=0.15)
    return _png_uri(plt, fig)


def write_report(results: list[dict], out: str | Path, *, profile: dict | None = None,
                 title: str | None = None) -> Path:
    """Write one self-contained HTML report of benchmark ``results`` (dicts) to ``out``; return its path.

    >>> write_report([r1.to_dict(), r2.to_dict()], "report.html", title="Pi 5")  # doctest: +SKIP
    """
    results = [r.to_dict() if hasattr(r, "to_dict") else r for r in results]  # BenchResult objects too
    devices = device_names(results)
    if devices:  # several devices: name each in the charts, and list the rows device by device
        results = sorted(({**r, "_device": d} for r, d in zip(results, devices)),
                         key=lambda r: devices.index(r["_device"]))
    results = [{**r, "_label": name} for r, name in zip(results, labels(results))]
    profile = profile.to_dict() if hasattr(profile, "to_dict") else profile
    if not results:
        raise ResultError("no benchmark results to report — pass at least one result (edgekit bench -o r.json)")
    plt = _pyplot()
    e = html.escape
    title = title or "edgekit benchmark report"
    figs: list[tuple[str, str]] = [("Latency distribution", _histogram(plt, results)),
                                   ("Latency CDF: read p50 at 0.5 and p99 at 0.99", _cdf(plt, results))]
    figs += [(f"Latency over the run: {r['_label']}", _timeline(plt, r)) for r in results]
    group = _scaling_group(results)
    if group:
        figs.append(("p50 versus threads; the dashed line is perfect scaling from the first point",
                     _scaling(plt, group)))
    if profile and profile.get("op_types"):
        figs.append(("Where the time goes, by ONNX operator type", _ops(plt, profile)))
    body = "".join(f'<figure><img alt="{e(cap)}" src="{uri}"><figcaption>{e(cap)}</figcaption></figure>'
                   for cap, uri in figs)
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>{_headline(results)}"
            f"<h2>Summary</h2>{_summary_table(results)}"
            f"<h2>Charts</h2>{body}</body></html>")
    out = Path(out)
    out.write_text(page, encoding="utf-8")
    return out


def read_profile(path: str | Path) -> dict[str, Any]:
    """A profile JSON (``edgekit profile --json``); not a benchmark result, so read it plainly."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultError(f"cannot read the profile {path}: {exc}; expected the JSON of edgekit profile --json") from exc
