"""Bursts: which timed samples overlapped a disturbance, and does the run's tail depend on them?

A whole-run rule ("CPU pressure over 20% in a fifth of the sampler's ticks") misses a short burst:
two busy processes for 0.6 s of a 4 s run touch 15% of the ticks, yet they double p99. So each
timed sample (its start on the ``perf_counter`` clock and its duration) is joined with the
sampler's ticks (every ``interval_s``, 10 Hz by default): a sample is **marked** when it overlaps
a tick interval that saw

- CPU pressure (Linux PSI ``some`` stall counter, the share of that interval in which a task waited
  for a CPU; on a VM the only sensor there is) at or above ``pressure_pct``,
- a CPU frequency ``freq_drop`` below the run's median clock, or
- other processes busy on at least ``other_cores`` cores (all-CPU use minus this process's own).

Percentiles are then also given over the unmarked samples, and the run is **suspect** when the
marked share exceeds ``max_marked_share`` or when its tail departs from its own clean tail
(``p99(all) / p99(unmarked) > tail_ratio``, p90 when there are too few samples for a p99).

>>> ticks = [{"t": 0.0}, {"t": 0.1, "pressure_pct": 0.0}, {"t": 0.2, "pressure_pct": 90.0},
...          {"t": 0.3, "pressure_pct": 0.0}]
>>> starts = [0.0, 0.095, 0.12, 0.15, 0.2, 0.25]  # 10 ms each; the 0.1-0.2 s interval was pressured
>>> mark(starts, [10.0] * 6, ticks)
[False, True, True, True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

# reasons a tick interval is disturbed, as the words printed in verdicts
PRESSURE, FREQUENCY, OTHERS = "CPU pressure", "CPU frequency drop", "other processes' load"
MIN_FOR_P99 = 200  # below this many unmarked samples a p99 is a handful of points: compare p90 tails


def disturbed_ticks(ticks: Sequence[dict], *, pressure_pct: float = 20.0, freq_drop: float = 0.15,
                    other_cores: float = 0.5) -> list[list[str]]:
    """For each interval between consecutive ticks (``len(ticks) - 1`` of them), the kinds of
    disturbance it saw (empty: none). A reading that is missing is no evidence either way."""
    mhz = [t["cpu_mhz_mean"] for t in ticks if t.get("cpu_mhz_mean")]
    floor = (1 - freq_drop) * float(np.median(mhz)) if mhz else None
    out = []
    for t in ticks[1:]:
        kinds = []
        if (t.get("pressure_pct") or 0) >= pressure_pct:
            kinds.append(PRESSURE)
        if floor is not None and t.get("cpu_mhz_mean") and t["cpu_mhz_mean"] < floor:
            kinds.append(FREQUENCY)
        if (t.get("others_cores") or 0) >= other_cores:
            kinds.append(OTHERS)
        out.append(kinds)
    return out


def mark(starts_s: Sequence[float], samples_ms: Sequence[float], ticks: Sequence[dict], **rules) -> list[bool]:
    """Per sample: did ``[start, start + duration]`` overlap a disturbed tick interval? ``starts_s``
    are on the clock of the ticks' ``t`` (seconds); ``rules`` as :func:`disturbed_ticks`."""
    return [bool(k) for k in _kinds_per_sample(starts_s, samples_ms, ticks, **rules)]


def _kinds_per_sample(starts_s, samples_ms, ticks, **rules) -> list[set[str]]:
    n = len(samples_ms)
    if len(ticks) < 2 or len(starts_s) != n:
        return [set() for _ in range(n)]
    edges = np.array([t["t"] for t in ticks], float)
    bad = disturbed_ticks(ticks, **rules)
    start = np.asarray(starts_s, float)
    end = start + np.asarray(samples_ms, float) / 1e3
    # interval i covers [edges[i], edges[i+1]]; a sample covers intervals first..last
    first = np.clip(np.searchsorted(edges, start, "right") - 1, 0, len(bad) - 1)
    last = np.clip(np.searchsorted(edges, end, "left") - 1, 0, len(bad) - 1)
    inside = (end >= edges[0]) & (start <= edges[-1])  # outside the sampler's watch: unknown, unmarked
    hits = np.concatenate([[0], np.cumsum([bool(k) for k in bad])])
    out = []
    for i in range(n):
        if not inside[i] or hits[last[i] + 1] == hits[first[i]]:
            out.append(set())
        else:
            out.append({k for j in range(first[i], last[i] + 1) for k in bad[j]})
    return out


@dataclass
class Bursts:
    """What :func:`assess_bursts` found; ``marked`` holds [start, stop) index ranges of marked samples."""

    n: int
    n_marked: int
    kinds: dict[str, int] = field(default_factory=dict)  # disturbance -> samples it touched
    p90_all: float | None = None
    p99_all: float | None = None
    p90_unmarked: float | None = None
    p99_unmarked: float | None = None
    tail: str = "p99"
    tail_ratio: float | None = None  # tail(all) / tail(unmarked)
    marked: list[list[int]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.n_marked / self.n if self.n else 0.0

    @property
    def is_suspect(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict:
        return {**asdict(self), "share": self.share, "is_suspect": self.is_suspect}


def assess_bursts(starts_s: Sequence[float], samples_ms: Sequence[float], ticks: Sequence[dict], *,
                  max_marked_share: float = 0.05, tail_ratio: float = 1.15, **rules) -> Bursts:
    """Mark samples (:func:`mark`), give p90/p99 over all and over unmarked samples, and say why the run
    is suspect: marked share above ``max_marked_share``, or its tail ``tail_ratio`` times its clean tail.

    >>> ticks = [{"t": 0.0}, {"t": 1.0, "pressure_pct": 0.0}, {"t": 2.0, "pressure_pct": 80.0}]
    >>> starts = [i * 0.01 for i in range(200)]
    >>> b = assess_bursts(starts, [5.0] * 100 + [10.0] * 100, ticks)
    >>> b.n_marked, b.is_suspect, b.reasons[0].split(":")[0]
    (100, True, 'CPU pressure overlapped 50% of samples (100/200)')
    """
    x = np.asarray(samples_ms, float)
    kinds = _kinds_per_sample(starts_s, samples_ms, ticks, **rules)
    flags = np.array([bool(k) for k in kinds], bool)
    clean = x[~flags] if x.size else x
    b = Bursts(n=int(x.size), n_marked=int(flags.sum()), marked=_ranges(flags))
    for k in kinds:
        for kind in k:
            b.kinds[kind] = b.kinds.get(kind, 0) + 1
    if x.size:
        b.p90_all, b.p99_all = (float(v) for v in np.percentile(x, [90, 99]))
    if clean.size:
        b.p90_unmarked, b.p99_unmarked = (float(v) for v in np.percentile(clean, [90, 99]))
    b.tail = "p99" if clean.size >= MIN_FOR_P99 else "p90"
    all_t, clean_t = (b.p99_all, b.p99_unmarked) if b.tail == "p99" else (b.p90_all, b.p90_unmarked)
    if all_t and clean_t:
        b.tail_ratio = all_t / clean_t
    what = " and ".join(sorted(b.kinds)) or "a disturbance"
    if b.n and b.share > max_marked_share:
        b.reasons.append(f"{what} overlapped {b.share:.0%} of samples ({b.n_marked}/{b.n}): more than "
                         f"{max_marked_share:.0%} — a burst of background load; re-run on a quiet machine")
    elif b.n_marked and b.tail_ratio is not None and b.tail_ratio > tail_ratio:
        b.reasons.append(f"{what} overlapped {b.n_marked}/{b.n} samples and the tail depends on them: {b.tail} "
                         f"{all_t:.4g} ms against {clean_t:.4g} ms without them ({b.tail_ratio:.2f}x) — "
                         f"quote the unmarked {b.tail} or re-run")
    return b


def _ranges(flags: np.ndarray) -> list[list[int]]:
    """[start, stop) ranges of the True runs of ``flags`` (compact for a result file)."""
    if not flags.size:
        return []
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return [[int(a), int(b)] for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]
