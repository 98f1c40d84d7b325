"""A/B benchmarking done right: two configurations, interleaved, each block in its own process.

Drift (thermals, a background job starting) hits both sides alike when the blocks alternate
in a random order, and each block runs in a fresh process, never two runtimes in one process
(that distorts the numbers: an ORT 2-thread p50 went 4.4 -> 15.9 ms with another runtime's
sessions in the same process). The samples of each side are pooled and compared with a
bootstrap CI of the ratio of medians (:mod:`edgekit.perf.comparison`).

>>> parse_config("threads=2,spin=off,opt=basic,batch=4")
{'threads': 2, 'spin_wait': False, 'optimization': 'basic', 'batch_size': 4}
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigError
from .stats import summarize

KEYS = {"threads": ("threads", int), "opt": ("optimization", str), "optimization": ("optimization", str),
        "spin": ("spin_wait", lambda v: v in ("on", "1", "true")), "batch": ("batch_size", int),
        "providers": ("providers", str), "provider": ("providers", str)}


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


def _cli_args(cfg: dict) -> list[str]:
    args = []
    if "threads" in cfg:
        args += ["--threads", str(cfg["threads"])]
    if "optimization" in cfg:
        args += ["--optimization", cfg["optimization"]]
    if "spin_wait" in cfg:
        args += ["--spin", "on" if cfg["spin_wait"] else "off"]
    if "batch_size" in cfg:
        args += ["--batch", str(cfg["batch_size"])]
    if "providers" in cfg:
        args += ["--providers", cfg["providers"]]
    return args


@dataclass
class ABResult:
    a: dict
    b: dict
    order: list[str]
    comparison: object


def run_ab(model: str, config_a: str, config_b: str, *, rounds: int = 6, block_s: float = 1.0, seed: int | None = None) -> ABResult:
    """Run ``rounds`` blocks of each configuration in random order, one process per block."""
    cfgs = {"A": parse_config(config_a), "B": parse_config(config_b)}
    labels = {"A": config_a, "B": config_b}
    pooled: dict[str, list[dict]] = {"A": [], "B": []}
    rng = random.Random(seed)
    order = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            pair = ["A", "B"]
            rng.shuffle(pair)
            for side in pair:
                out = Path(tmp) / f"{r}{side}.json"
                cmd = [sys.executable, "-m", "edgekit", "bench", model, *_cli_args(cfgs[side]),
                       "--min-runs", "10", "--min-s", str(block_s), "--max-s", str(4 * block_s + 5), "--json", str(out)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    why = proc.stderr.strip()[-500:]
                    if proc.returncode == 2 and why.startswith("edgekit: error: "):  # the model or a value in the config
                        raise ConfigError(f"A/B block {side} ({labels[side]}): {why.removeprefix('edgekit: error: ')}")
                    raise RuntimeError(f"A/B block {side} failed: {why}")
                pooled[side].append(json.loads(out.read_text()))
                order.append(side)
    merged = {side: _merge(pooled[side], labels[side]) for side in pooled}
    from .comparison import compare

    return ABResult(merged["A"], merged["B"], order, compare(merged["A"], merged["B"]))


def _merge(blocks: list[dict], label: str) -> dict:
    """Pool the warm samples of several blocks into one result (the first block's metadata)."""
    merged = dict(blocks[0])
    samples = [s for b in blocks for s in b["samples_ms"]]
    merged["samples_ms"] = samples
    merged["latency_ms"] = summarize(samples)
    merged["throughput_ips"] = sum(b["throughput_ips"] for b in blocks) / len(blocks)
    merged["label"] = label
    merged["blocks"] = [{"p50": b["latency_ms"]["p50"], "n": b["latency_ms"]["n"]} for b in blocks]
    reasons = [r for b in blocks for r in b.get("suspect", {}).get("reasons", [])]
    merged["suspect"] = {"is_suspect": bool(reasons), "reasons": reasons}
    return merged
