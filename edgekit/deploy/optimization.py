"""What ONNX Runtime's graph optimizer does to a model, level by level, and what it buys.

ONNX Runtime rewrites every graph when it creates a session: ``basic`` folds constants and removes
redundant nodes, ``extended`` fuses patterns into ORT's own kernels (Conv+Relu -> ``FusedConv``,
QDQ groups -> ``QLinearConv``), ``all`` adds the hardware-specific NCHWc memory layout. Setting
``SessionOptions.optimized_model_filepath`` saves the rewritten graph, so you can *see* what runs.

>>> r = optimize("digits-cnn", levels=("disable", "extended"), measure=False)
>>> [(lv.level, lv.nodes) for lv in r.levels]
[('disable', 9), ('extended', 6)]
>>> r.levels[1].op_histogram["FusedConv"]
2
"""

from __future__ import annotations

import collections
import functools
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._errors import ConfigError

LEVELS = ("disable", "basic", "extended", "all")
_ORT_LEVEL = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}
_STANDARD_DOMAINS = ("", "ai.onnx")


def model_path(model: Any) -> Path:
    """The ``.onnx`` file behind a zoo name, a path or a loaded :class:`~edgekit.Model`."""
    if getattr(model, "path", None) is not None:
        return Path(model.path)
    from ..runtime.zoo import resolve

    return resolve(model)[0]


def op_histogram(model: Any) -> dict[str, int]:
    """``{op_type: count}`` of a model file (or ``onnx.ModelProto``), most frequent first.

    >>> op_histogram("digits-cnn")["Conv"]
    2
    """
    import onnx

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model_path(model)), load_external_data=False)
    return dict(collections.Counter(n.op_type for n in proto.graph.node).most_common())


def save_optimized(model: Any, out: str | os.PathLike, level: str = "extended"):
    """Let ONNX Runtime optimize ``model`` at ``level`` and save the graph it would run; return it
    as an ``onnx.ModelProto``. ``all`` may add ops that only load on this kind of CPU (NCHWc)."""
    import onnx
    import onnxruntime as ort

    if level not in _ORT_LEVEL:
        raise ConfigError(f"level must be one of {tuple(_ORT_LEVEL)}, got {level!r}")
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVEL[level])
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 3  # ORT logs a warning for `all` (hardware-specific graph): we report it as a note
    ort.InferenceSession(str(model_path(model)), so, providers=["CPUExecutionProvider"])
    return onnx.load(str(out))


def executed_graph(model: Any, level: str = "extended"):
    """The graph ONNX Runtime's CPU provider runs (after fusions), as an ``onnx.ModelProto``.

    >>> op_histogram(executed_graph("digits-cnn"))["FusedConv"]
    2
    """
    with tempfile.TemporaryDirectory() as tmp:
        return save_optimized(model, Path(tmp) / "optimized.onnx", level)


def fallback_ops(proto) -> dict[str, int]:
    """Ops left in float between an activation ``DequantizeLinear`` and a ``QuantizeLinear``. Pass
    :func:`executed_graph` of a quantized model: after ORT's fusions, what is still there has no
    quantized kernel and pays for the conversions."""
    nodes = list(proto.graph.node)
    inits = {i.name for i in proto.graph.initializer}
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    consumers: dict[str, list[int]] = collections.defaultdict(list)
    for k, n in enumerate(nodes):
        for i in n.input:
            consumers[i].append(k)

    def down(k: int) -> list[int]:
        return [c for o in nodes[k].output for c in consumers[o]]

    def up(k: int) -> list[int]:
        return [producer[i] for i in nodes[k].input if i in producer]

    def reach(starts: list[int], step, stop: str) -> set[int]:  # nodes reachable without crossing a `stop` op
        seen, todo = set(), list(starts)
        while todo:
            k = todo.pop()
            if k not in seen and nodes[k].op_type != stop:
                seen.add(k)
                todo += step(k)
        return seen

    dq = [k for k, n in enumerate(nodes) if n.op_type == "DequantizeLinear" and n.input[0] not in inits]
    q = [k for k, n in enumerate(nodes) if n.op_type == "QuantizeLinear"]
    between = (reach([c for k in dq for c in down(k)], down, "QuantizeLinear")
               & reach([p for k in q for p in up(k)], up, "DequantizeLinear"))
    return dict(collections.Counter(nodes[k].op_type for k in between).most_common())


def interleaved_p50(variants: dict[str, Any], *, feed: dict | None = None, rounds: int = 5, threads: int = 1,
                    min_s: float = 0.3, options: dict[str, dict] | None = None,
                    seed: int | None = None) -> tuple[dict[str, list[float]], list[dict]]:
    """p50 latency (ms) of each variant per round, blocks interleaved by edgekit's one rule
    (:func:`edgekit.perf.interleave.schedule`). Returns ``(p50s, blocks)``: ``blocks`` holds every
    block's ``suspect`` record, for :func:`edgekit.perf.verdict.verdict` ("suspect: CPU pressure in 3/10 blocks").

    ``variants`` maps a label to a model; ``options`` (per label) adds :func:`edgekit.benchmark`
    options such as ``optimization``. Each block is a short :func:`edgekit.benchmark` run in this
    process: every variant is ONNX Runtime on the CPU, so no other runtime shares the process."""
    from ..perf.bench import benchmark, random_feed
    from ..perf.interleave import block_budget, interleave
    from ..runtime.model import load

    labels = list(variants)
    if feed is None:
        feed = random_feed(load(variants[labels[0]], providers="cpu"))
    blocks = {k: functools.partial(benchmark, variants[k], feed, threads=threads, **block_budget(min_s),
                                   **(options or {}).get(k, {})) for k in labels}
    results, _ = interleave(blocks, rounds=rounds, seed=seed)
    p50s = {k: [r.latency_ms["p50"] for r in results[k]] for k in labels}
    return p50s, [{k: v for k, v in r.suspect.items() if k != "bursts"} for rs in results.values() for r in rs]


@dataclass
class LevelStats:
    """One optimization level: the saved graph, its size in nodes and ops, and (optionally) speed.
    A row of :class:`OptimizeResult` (``levels``), written and printed by it, as ``StageStats`` is
    of a pipeline's result."""

    level: str
    path: str  # "" when no out_dir was given
    nodes: int
    op_histogram: dict[str, int]
    custom_domains: dict[str, int] = field(default_factory=dict)  # nodes in ORT-only domains
    p50_ms: float | None = None  # median over rounds of the per-block p50
    speedup: float | None = None  # median over rounds of p50(disable) / p50(this level)


@dataclass
class OptimizeResult:
    model: str
    source: str
    nodes: int
    op_histogram: dict[str, int]
    levels: list[LevelStats]
    threads: int = 1
    rounds: int = 0
    notes: list[str] = field(default_factory=list)
    conditions: str = ""  # the measurement's clean/suspect word over its blocks (edgekit.perf.verdict)
    missing_sensors: list[str] = field(default_factory=list)  # sensors this device lacks

    def to_dict(self) -> dict:
        return {"schema": "edgekit.optimize/1", **asdict(self)}

    def __str__(self) -> str:
        word = f" [{self.conditions}]" if self.conditions else ""
        rows = [f"{self.model}: {self.nodes} nodes in the file ({_ops(self.op_histogram)})",
                f"{'level':<9} {'nodes':>5} {'p50 ms':>8} {'speed-up':>8}  ops{word}"]
        for lv in self.levels:
            p50 = f"{lv.p50_ms:8.3f}" if lv.p50_ms is not None else f"{'-':>8}"
            up = f"{lv.speedup:7.2f}x" if lv.speedup is not None else f"{'-':>8}"
            word = f"  [{self.conditions}]" if self.conditions and lv.p50_ms is not None else ""
            rows.append(f"{lv.level:<9} {lv.nodes:>5} {p50} {up}  {_ops(lv.op_histogram)}{word}")
        return "\n".join(rows + [f"note: {n}" for n in self.notes])


def _ops(hist: dict[str, int], limit: int = 8) -> str:
    items = [f"{op} x{n}" for op, n in list(hist.items())[:limit]]
    return ", ".join(items) + (f", +{len(hist) - limit} more" if len(hist) > limit else "")


def optimize(model: Any, out_dir: str | os.PathLike | None = None, *, levels: Sequence[str] = LEVELS,
             measure: bool = True, threads: int = 1, rounds: int = 3, min_s: float = 0.3) -> OptimizeResult:
    """Save ``model`` as ONNX Runtime optimizes it at each level into ``out_dir`` (a temporary
    folder when None: the files are then gone) and compare node counts, ops and, with
    ``measure=True``, latency at ``threads`` threads (``rounds`` interleaved short blocks)."""
    import onnx

    src = model_path(model)
    name = getattr(model, "name", None) or (str(model) if not Path(str(model)).suffix else src.stem)
    tmp = tempfile.TemporaryDirectory() if out_dir is None else None
    folder = Path(tmp.name if tmp else out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        reports = []
        for level in levels:
            path = folder / f"{src.stem}.{level}.onnx"
            proto = save_optimized(src, path, level)
            custom = collections.Counter(n.domain for n in proto.graph.node if n.domain not in _STANDARD_DOMAINS)
            kept = "" if tmp else str(path)  # a temporary folder is gone after this call
            reports.append(LevelStats(level, kept, len(proto.graph.node), op_histogram(proto), dict(custom)))
    finally:
        if tmp:
            tmp.cleanup()
    original = onnx.load(str(src), load_external_data=False)
    result = OptimizeResult(name, str(src), len(original.graph.node), op_histogram(original), reports, threads)
    if any("nchwc" in d for lv in reports for d in lv.custom_domains):
        result.notes.append("`all` adds NCHWc layout ops (com.microsoft.nchwc), tuned to this CPU: ORT says such a "
                            "saved file belongs on the same kind of machine; ship `extended` and let each device "
                            "add its layout")
    if measure:
        from ..perf.verdict import missing_sensors, verdict

        p50s, blocks = interleaved_p50({lv: src for lv in levels}, rounds=rounds, threads=threads, min_s=min_s,
                                       options={lv: {"optimization": lv} for lv in levels})
        suspect = sum(bool(b.get("is_suspect")) for b in blocks)
        result.conditions, result.missing_sensors = verdict(blocks), missing_sensors(blocks)
        base = np.array(p50s[levels[0]])
        for lv in reports:
            lv.p50_ms = float(np.median(p50s[lv.level]))
            lv.speedup = float(np.median(base / np.array(p50s[lv.level])))
        result.rounds = rounds
        flagged = f"; {suspect} block(s) flagged for background load" if suspect else ""
        result.notes.append(f"speed-up = median over {rounds} interleaved rounds of p50({levels[0]}) / p50(level), "
                            f"{threads} thread(s){flagged}")
    return result
