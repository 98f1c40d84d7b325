"""Benchmark suites: models x settings from one JSON file, run one benchmark at a time.

Each finished benchmark is written to ``OUT/<model>__<setting>.json`` at once, so an interrupted
suite keeps what it finished, and running it again skips those files (``--force`` redoes them).

    {"name": "quick", "models": ["digits-cnn", "mobilenetv2-224"],
     "settings": {"threads": [1, 2]}, "budget": {"min_runs": 50, "min_s": 2.0, "max_s": 10.0}}

``settings`` keys are :class:`~edgekit.perf.bench.BenchConfig` fields, each with a list of values;
every combination is run for every model. ``"repeat": N`` (default 1) measures each job in N
independent processes (:func:`edgekit.perf.runs.run_repeated`, as ``edgekit bench --repeat N``), so
its result carries a CI over runs; ``budget`` is then per run.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Callable

from .._errors import ConfigError
from .._io import atomic_write
from .bench import BenchConfig, benchmark


def load_suite(path: str | Path) -> dict:
    """Read and check a suite file; a missing, malformed or unknown-key file is a :class:`ConfigError`."""
    expected = 'a JSON object like {"models": ["digits-cnn"], "settings": {"threads": [1, 2]}}'
    try:
        suite = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no suite file at '{path}': expected {expected} (see benchmarks/suites/)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"suite {path} cannot be read as JSON ({exc}): expected {expected}") from None
    if not isinstance(suite, dict):
        raise ConfigError(f"suite {path}: expected {expected}, got a JSON {type(suite).__name__}")
    for part in ("settings", "budget"):
        if not isinstance(suite.get(part, {}), dict):
            raise ConfigError(f"suite {path}: {part!r} must be an object, got {suite[part]!r}")
    bad = {k: v for k, v in suite.get("settings", {}).items() if not isinstance(v, list)}
    if bad:
        raise ConfigError(f"suite {path}: each setting takes a list of values, e.g. \"threads\": [1, 2]; got {bad}")
    known = {f.name for f in fields(BenchConfig)}
    for key in [*suite.get("settings", {}), *suite.get("budget", {})]:
        if key not in known:
            raise ConfigError(f"suite {path}: unknown setting {key!r}; expected BenchConfig fields: {sorted(known)}")
    repeat = suite.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise ConfigError(f"suite {path}: 'repeat' is the number of independent runs per job, an integer >= 1; "
                          f"got {repeat!r}")
    if not suite.get("models") or not isinstance(suite["models"], list):
        raise ConfigError(f"suite {path}: expected a non-empty 'models' list, got {suite.get('models')!r}")
    return suite


def jobs(suite: dict) -> list[tuple[str, dict]]:
    settings = suite.get("settings", {})
    keys = list(settings)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(settings[k] for k in keys))] or [{}]
    return [(model, combo) for model in suite["models"] for combo in combos]


def job_file(out: Path, model: str, combo: dict) -> Path:
    tag = "_".join(f"{k}-{v}" for k, v in combo.items()) or "default"
    return out / re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{model}__{tag}.json")


def write_json(path: Path, data) -> None:
    """Write ``data`` to ``path`` atomically: an interrupted run never leaves half a file."""
    atomic_write(path, json.dumps(data, indent=1))


def measure(model, options: dict, repeat: int = 1):
    """One job: a run in this process, or ``repeat`` runs in fresh processes, merged."""
    if repeat > 1:
        from .runs import run_repeated

        return run_repeated(model, repeat, **options)
    return benchmark(model, **options)


def run_suite(path: str | Path, out: str | Path, *, force: bool = False,
              on_result: Callable[[Path, dict], None] | None = None) -> list[Path]:
    """Run every job not already done; return the result files (old and new)."""
    suite = load_suite(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for model, combo in jobs(suite):
        target = job_file(out, model, combo)
        files.append(target)
        if target.exists() and not force:
            continue
        result = measure(model, {**suite.get("budget", {}), **combo}, suite.get("repeat", 1)).to_dict()
        result["suite"] = suite.get("name", Path(path).stem)
        write_json(target, result)
        if on_result:
            on_result(target, result)
    return files
