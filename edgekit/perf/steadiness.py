"""Was the machine's speed steady during a run? A check that needs no sensor.

On a shared VM the host's other tenants can halve this guest's speed for seconds while every
in-guest sensor stays quiet: no CPU pressure (PSI), no load, no steal, no frequency change
(``python benchmarks/drift.py`` saw 1 s windows of one run range 2.1-2.5x with the run called
clean). The samples themselves show it. Cut the run's unmarked samples (those no sensor explains,
:mod:`edgekit.perf.bursts`), in time order, into ``parts`` consecutive parts and take each part's
median: on a steady machine they agree within their own sampling noise (the median of 20 samples
with a 10% spread moves ~3%). The run is suspect when the parts' medians range over ``max_range``
(1.25: 25%) *and* over ``noise_k`` standard errors of a part's median (its samples' spread, a
robust MAD of their logs, times 1.2533 / sqrt(part size)): a noisy microsecond model is not called
unsteady for its noise alone.

>>> import numpy as np
>>> starts = [i * 0.01 for i in range(400)]
>>> assess_steadiness(starts, [5.0] * 400).is_suspect
False
>>> s = assess_steadiness(starts, [5.0] * 200 + [10.0] * 200)
>>> s.is_suspect, round(s.range, 2)
(True, 2.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

UNSTEADY = "unsteady speed"  # the word verdicts print


@dataclass
class Steadiness:
    """The medians of a run's consecutive parts (``part_p50_ms``) and their ``range`` (max / min)."""

    parts: int
    part_p50_ms: list[float] = field(default_factory=list)
    range: float | None = None  # None: too few unmarked samples to tell
    allowed: float | None = None  # the range its own sampling noise allows (at least max_range)
    reasons: list[str] = field(default_factory=list)

    @property
    def is_suspect(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict:
        return {**asdict(self), "is_suspect": self.is_suspect}


def assess_steadiness(starts_s: Sequence[float], samples_ms: Sequence[float], marked: Sequence[bool] | None = None,
                      *, parts: int = 5, min_per_part: int = 20, max_range: float = 1.25,
                      noise_k: float = 6.0) -> Steadiness:
    """Split the unmarked samples (``marked``: per sample, from :func:`edgekit.perf.bursts.mark`) in
    start order into ``parts`` parts of at least ``min_per_part`` samples; suspect when the parts'
    medians range over ``max_range`` and over ``noise_k`` standard errors of a part's median."""
    x = np.asarray(samples_ms, float)
    order = np.argsort(np.asarray(starts_s, float), kind="stable") if len(starts_s) == x.size else np.arange(x.size)
    keep = ~np.asarray(marked, bool)[order] if marked is not None and len(marked) == x.size else np.ones(x.size, bool)
    x = x[order][keep]
    out = Steadiness(parts=parts)
    if x.size < parts * min_per_part:
        return out
    logs = np.array_split(np.log(np.maximum(x, 1e-12)), parts)
    centres = [float(np.median(p)) for p in logs]
    spread = 1.4826 * float(np.median(np.concatenate([np.abs(p - c) for p, c in zip(logs, centres)])))
    se = 1.2533 * spread / np.sqrt(min(p.size for p in logs))
    out.part_p50_ms = [float(np.median(p)) for p in np.array_split(x, parts)]
    lo, hi = min(out.part_p50_ms), max(out.part_p50_ms)
    out.range, out.allowed = hi / lo, float(max(max_range, np.exp(noise_k * se)))
    if out.range > out.allowed:
        out.reasons.append(f"{UNSTEADY}: the medians of its {parts} consecutive parts ranged {out.range:.2f}x "
                           f"({lo:.4g}-{hi:.4g} ms) with no sensor showing why (a shared host's other tenants?) — "
                           "re-run, and compare interleaved (--ab)")
    return out
