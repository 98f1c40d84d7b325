"""Interleaved timing: the one rule for comparing configurations or models, block by block.

Drift (thermals, a background job starting, a frequency governor) hits every side alike only if
the sides take turns. The rule, for :func:`run_ab` (configurations, a process per block) and
:func:`edgekit.deploy.optimization.interleaved_p50` (models, in-process) alike, is
:func:`schedule`: rounds come in pairs, the first of a pair runs the sides in a seeded random order
and the second in the mirror of it (A B | B A). The mirror cancels a drift that is linear over the
pair exactly (each side sits once early and once late), which alternation alone does only for two
sides; the random first order keeps a periodic disturbance from lining up with a fixed position.
Every block has the same budget (:func:`block_budget`). Where a block runs is the caller's: a fresh
process whenever the sides may load different runtimes or providers (never two runtimes in one
process: an ORT 2-thread p50 went 4.4 -> 15.9 ms with another runtime's sessions beside it), in
this process when every side is ONNX Runtime on the CPU. Each block is a run (a process of its own
for :func:`run_ab`): a side keeps its blocks' samples under ``runs`` (and pooled in ``samples_ms``),
and the ratio's CI is the hierarchical bootstrap over runs (:mod:`edgekit.perf.comparison`).

>>> parse_config("threads=2,spin=off,opt=basic,batch=4")
{'threads': 2, 'spin_wait': False, 'optimization': 'basic', 'batch_size': 4}
>>> schedule(["A", "B"], rounds=4, seed=1)
[['A', 'B'], ['B', 'A'], ['B', 'A'], ['A', 'B']]
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .._errors import ConfigError

if TYPE_CHECKING:
    from .comparison import Comparison

T = TypeVar("T")

KEYS = {"threads": ("threads", int), "opt": ("optimization", str), "optimization": ("optimization", str),
        "spin": ("spin_wait", lambda v: v in ("on", "1", "true")), "batch": ("batch_size", int),
        "providers": ("providers", str), "provider": ("providers", str), "timed": ("timed", str),
        "model": ("model", str)}  # model=PATH: this side runs another model (fp32 against int8, interleaved)


def parse_config(text: str) -> dict:
    """``"threads=2,spin=off"`` -> BenchConfig overrides; unknown keys say which are allowed."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"A/B config {text!r}: expected key=value pairs with keys {sorted(KEYS)}, got {part!r}")
        name, conv = KEYS[key]
        try:
            out[name] = conv(value)
        except ValueError:
            raise ConfigError(f"A/B config {text!r}: {key} takes an integer, got {value!r}") from None
    return out


@dataclass
class ABResult:
    """What :func:`run_ab` measured: each side's merged result (``a``, ``b``), the order the blocks ran
    in, and the :class:`~edgekit.perf.comparison.Comparison` of B against A."""

    a: dict
    b: dict
    order: list[str]
    comparison: Comparison

    def to_dict(self) -> dict:
        return {"schema": "edgekit.perf.ab/1", "a": self.a, "b": self.b, "order": self.order,
                "comparison": self.comparison.to_dict()}

    def __str__(self) -> str:
        from .bench import time_unit
        from .verdict import verdict

        sides = []
        for side, r in (("A", self.a), ("B", self.b)):
            scale, unit = time_unit(r["latency_ms"]["p50"])
            sides.append(f"{side} = {r['label']}: p50 {r['latency_ms']['p50'] * scale:.4g} {unit} over "
                         f"{r['latency_ms']['n']} samples in {len(r.get('runs') or [])} blocks  [{verdict(r)}]")
        return "\n".join([*sides, f"order of blocks (one process each): {' '.join(self.order)}", str(self.comparison)])


def schedule(sides: Sequence[str], rounds: int, seed: int | None = None) -> list[list[str]]:
    """The order of the blocks, round by round (see the module docstring for why)."""
    rng, out = random.Random(seed), []
    for r in range(rounds):
        if r % 2:
            out.append(out[-1][::-1])
        else:
            out.append(rng.sample(list(sides), len(sides)))
    return out


def block_budget(block_s: float) -> dict:
    """:class:`~edgekit.perf.bench.BenchConfig` budget of one block: at least 10 runs and ``block_s``."""
    return {"min_runs": 10, "min_s": block_s, "max_s": 4 * block_s + 5, "warmup_s": min(0.1, block_s)}


def interleave(blocks: dict[str, Callable[[], T]], *, rounds: int, seed: int | None = None) -> tuple[dict[str, list[T]], list[str]]:
    """Run one block of each side per round in :func:`schedule` order; return each side's block
    results (in order) and the sides in the order they ran."""
    results: dict[str, list[T]] = {side: [] for side in blocks}
    order = [side for rnd in schedule(list(blocks), rounds, seed) for side in rnd]
    for side in order:
        results[side].append(blocks[side]())
    return results, order


def run_sweep(model, option_sets: Sequence[dict], repeat: int, *, seed: int | None = None,
              on_run: Callable[[int, dict], None] | None = None) -> list:
    """``repeat`` runs (a fresh process each) of every configuration in ``option_sets``, taking turns in
    :func:`schedule` order, so a shift of the machine hits every configuration alike; one merged
    :class:`~edgekit.perf.bench.BenchResult` per configuration, all with the same ``interleaved`` id,
    which :func:`edgekit.perf.comparison.compare` reads as "interleaved". ``on_run(i, result)`` after
    each run of configuration ``i``."""
    from .bench import _config, _now
    from .runs import merge_runs, run_once

    for options in option_sets:
        _config(dict(options))  # a bad option fails here, before any process starts
    def block(i: int) -> dict:
        result = run_once(model, dict(option_sets[i]), what=f"a run of config {i + 1}")
        if on_run:
            on_run(i, result)
        return result

    blocks = {i: functools.partial(block, i) for i in range(len(option_sets))}
    per_config, _ = interleave(blocks, rounds=repeat, seed=seed)
    group = f"sweep {_now()}"
    results = [merge_runs(per_config[i]) for i in range(len(option_sets))]
    for r in results:
        r.interleaved = group
    return results


def run_ab(model: str | None, config_a: str, config_b: str, *, rounds: int = 6, block_s: float = 1.0, seed: int | None = None,
           min_effect: float = 0.02) -> ABResult:
    """Run ``rounds`` blocks of each configuration in :func:`schedule` order, one process per block
    (:func:`edgekit.perf.runs.run_once`, the process every repeated run is);
    ``min_effect`` is the comparison's equivalence band (:func:`edgekit.perf.comparison.compare`).
    A config's ``model=PATH`` runs that model on its side instead of ``model`` (then ``model`` may be None)."""
    from .bench import _config
    from .runs import run_once

    cfgs = {"A": parse_config(config_a), "B": parse_config(config_b)}
    labels = {"A": config_a, "B": config_b}
    models = {side: cfg.pop("model", model) for side, cfg in cfgs.items()}  # the rest are BenchConfig fields
    for side, cfg in cfgs.items():  # a bad value fails here, before any process starts
        try:
            _config(dict(cfg))
        except ConfigError as exc:
            raise ConfigError(f"A/B block {side} ({labels[side]}): {exc}") from None

    def block(side: str) -> dict:
        return run_once(models[side], {**cfgs[side], **block_budget(block_s)}, what=f"A/B block {side} ({labels[side]})")

    pooled, order = interleave({side: functools.partial(block, side) for side in cfgs}, rounds=rounds, seed=seed)
    merged = {side: _merge(pooled[side], labels[side]) for side in pooled}
    names = (f"{config_a} (A)", f"{config_b} (B)") if config_a == config_b else None  # an A/A check
    from .comparison import compare

    comparison = compare(merged["A"], merged["B"], min_effect=min_effect, interleaved=True, names=names)
    return ABResult(merged["A"], merged["B"], order, comparison)


def _merge(blocks: list[dict], label: str) -> dict:
    """One side's result: its blocks merged as independent runs (:func:`edgekit.perf.runs.merge_runs`:
    samples pooled, p50 CI over the blocks), plus the side's ``label``, each block's p50 and n under
    ``blocks``, and each block's suspect record under ``suspect.blocks`` (for "in 9/10 blocks")."""
    from .runs import merge_runs

    merged = merge_runs(blocks).to_dict()
    merged["label"] = label
    merged["blocks"] = [{"p50": b["latency_ms"]["p50"], "n": b["latency_ms"]["n"]} for b in blocks]
    merged["suspect"]["blocks"] = [{k: v for k, v in (b.get("suspect") or {}).items() if k != "bursts"} for b in blocks]
    return merged
