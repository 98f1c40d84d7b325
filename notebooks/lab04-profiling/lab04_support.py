"""Support code for Lab 4 (per-operator profiling): helpers you may use, nothing to edit.

    write_trace(events, layout)   save events as a trace file and return its path
    plot_run(ax, events, run)     draw one session.run as a timeline of its kernels
"""

from __future__ import annotations

import json
import tempfile


def write_trace(events: list[dict], layout: str = "list") -> str:
    """Write ``events`` to a new temporary ``.json`` file and return its path.

    ``layout="list"`` writes what ONNX Runtime writes (a JSON list of events);
    ``layout="chrome"`` writes the other Chrome-trace layout, ``{"traceEvents": [...]}``,
    which chrome://tracing and Perfetto read too.
    """
    if layout not in ("list", "chrome"):
        raise ValueError(f"layout must be 'list' or 'chrome', got {layout!r}")
    doc = events if layout == "list" else {"traceEvents": events, "displayTimeUnit": "ms"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="trace-", delete=False) as f:
        json.dump(doc, f)
    return f.name


def plot_run(ax, events: list[dict], run: int = 0) -> None:
    """Draw run number ``run`` (0 = the first ``model_run`` in time) of a trace on ``ax``:
    one bar for the whole ``model_run`` and one bar per kernel, at their real start times."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    r = runs[run]
    t0 = r["ts"]
    kernels = sorted((e for e in events if e.get("cat") == "Node" and r["ts"] <= e["ts"] <= r["ts"] + r["dur"]
                      and not e["name"].endswith(("_fence_before", "_fence_after"))), key=lambda e: e["ts"])
    ax.barh(0, r["dur"], left=0, color="lightgray", edgecolor="gray")
    ax.text(r["dur"] / 2, 0, f"model_run {r['dur']} us", ha="center", va="center", fontsize=8)
    ops = sorted({k["args"]["op_name"] for k in kernels})
    colors = {op: f"C{i}" for i, op in enumerate(ops)}
    for i, k in enumerate(kernels, start=1):
        ax.barh(i, max(k["dur"], 0.3), left=k["ts"] - t0, color=colors[k["args"]["op_name"]])
        ax.text(k["ts"] - t0 + k["dur"] + r["dur"] / 150, i, f"{k['args']['op_name']} {k['dur']} us", va="center",
                fontsize=8, clip_on=True)
    ax.set_yticks(range(len(kernels) + 1), ["run"] + [k["name"].removesuffix("_kernel_time")[:28] for k in kernels],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"microseconds since the start of run {run}")
    ax.set_xlim(0, r["dur"] * 1.3)
