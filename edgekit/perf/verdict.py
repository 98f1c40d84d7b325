"""The word that goes with every printed timing: ``clean`` or ``suspect: CPU pressure in 9/10 blocks``.

Every command that prints a latency (bench, compare, ``--ab``, suites and fleets, quantize,
optimize, profile, the tour, live video, the report's headline) passes what it measured to
:func:`verdict` and prints its answer beside the number, so a warning cannot get lost between a
result file and the terminal. :func:`missing_sensors` names the sensors the device lacks (a VM has
no CPU frequency or temperature), said once per command by :func:`sensors_note`.

:func:`judge` is what a benchmark stores as its ``suspect`` record: the sampler's whole-run rules
(:func:`edgekit.perf.sampler.assess`), the per-sample burst marks (:mod:`edgekit.perf.bursts`) and
the steadiness of the unmarked samples, which needs no sensor (:mod:`edgekit.perf.steadiness`).
:class:`watch` gives the same record to a timing that has no timed samples of its own (a profile).

>>> verdict({"is_suspect": False})
'clean'
>>> verdict([{"is_suspect": True, "kinds": ["CPU pressure"]}] * 9 + [{"is_suspect": False}])
'suspect: CPU pressure in 9/10 blocks'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .bursts import FREQUENCY, OTHERS, PRESSURE, assess_bursts
from .steadiness import UNSTEADY, assess_steadiness

HEAT, OTHER = "heat", "too few samples or another check"
# words of the sampler's reasons and notes -> the short names verdicts print
_REASON_WORDS = (("pressure", PRESSURE), ("frequency", FREQUENCY), ("thermal", HEAT), ("other processes", OTHERS),
                 (UNSTEADY, UNSTEADY))
_MISSING_WORDS = (("no CPU pressure data", "CPU pressure (PSI)"), ("no CPU frequency", "CPU frequency"),
                  ("no temperature", "temperature"), ("no background sampler", "background sampler"),
                  ("no samples were taken", "background sampler"))


def judge(ticks: Sequence[dict], starts_s: Sequence[float], samples_ms: Sequence[float]) -> dict:
    """The ``suspect`` record of a run: ``is_suspect``, ``reasons``, ``notes``, ``kinds`` (short names
    of what made it suspect), ``missing`` (sensors this device lacks) and ``bursts`` (per-sample marks,
    p90/p99 over unmarked samples) when there are timed samples."""
    from .sampler import assess

    a = assess(list(ticks))
    reasons, notes = list(a.reasons), list(a.notes)
    kinds = _kinds(reasons)
    out: dict[str, Any] = {}
    if samples_ms:
        b = assess_bursts(starts_s, samples_ms, ticks)
        reasons += b.reasons
        if b.reasons:
            kinds += [k for k in sorted(b.kinds) if k not in kinds]
        out["bursts"] = b.to_dict()
        marked = np.zeros(len(samples_ms), bool)
        for lo, hi in b.marked:
            marked[lo:hi] = True
        st = assess_steadiness(starts_s, samples_ms, marked)  # what no sensor explains
        reasons += st.reasons
        if st.reasons:
            kinds.append(UNSTEADY)
        out["steadiness"] = st.to_dict()
    missing = list(dict.fromkeys(m for n in notes for word, m in _MISSING_WORDS if word in n))
    return {"is_suspect": bool(reasons), "reasons": reasons, "notes": notes, "kinds": kinds,
            "missing": missing, **out}


def _kinds(reasons: Sequence[str]) -> list[str]:
    found = [name for r in reasons for word, name in _REASON_WORDS if word in r]
    if reasons and not found:
        found = [OTHER]
    return list(dict.fromkeys(found))


def suspect_of(x: Any) -> dict:
    """The ``suspect`` record of a BenchResult, a result dict, or a suspect record itself."""
    if hasattr(x, "suspect"):
        return x.suspect or {}
    if isinstance(x, dict) and "is_suspect" not in x and "suspect" in x:
        return x.get("suspect") or {}
    return x if isinstance(x, dict) else {}


def verdict(x: Any) -> str:
    """``clean``, or ``suspect: ...`` naming what disturbed the run; ``x`` is one result (object, dict
    or its ``suspect`` record) or a list of blocks (``suspect: CPU pressure in 9/10 blocks``). A pooled
    A/B side (its ``suspect`` has ``blocks``) is judged block by block."""
    if isinstance(x, (list, tuple)):
        return _blocks([suspect_of(b) for b in x])
    s = suspect_of(x)
    if s.get("blocks"):
        return _blocks(s["blocks"])
    if not s.get("is_suspect"):
        return "clean"
    kinds = s.get("kinds") or _kinds(s.get("reasons") or [])
    b = s.get("bursts") or {}
    where = f" ({b['n_marked']}/{b['n']} samples marked)" if b.get("n_marked") else ""
    return f"suspect: {', '.join(kinds) or OTHER}{where}"


def _blocks(suspects: Sequence[dict]) -> str:
    n = len(suspects)
    counts = Counter(k for s in suspects if s.get("is_suspect")
                     for k in (s.get("kinds") or _kinds(s.get("reasons") or [])) or [OTHER])
    if not counts:
        return "clean" if n else "clean (nothing measured)"
    return "suspect: " + ", ".join(f"{k} in {c}/{n} blocks" for k, c in counts.most_common())


def missing_sensors(xs: Any) -> list[str]:
    """Sensors no run in ``xs`` (one result or a list, as :func:`verdict`) could read."""
    items = xs if isinstance(xs, (list, tuple)) else [xs]
    out: list[str] = []
    for x in items:
        s = suspect_of(x)
        subs = s.get("blocks") or [s]
        for sub in subs:
            found = sub.get("missing")
            if found is None:
                found = [m for n in sub.get("notes") or [] for word, m in _MISSING_WORDS if word in n]
            out += [m for m in found if m not in out]
    return out


def sensors_note(xs: Any) -> str | None:
    """One line naming the sensors this device lacks (print it once per command), or None."""
    return sensors_line(missing_sensors(xs))


def sensors_line(missing: Sequence[str]) -> str | None:
    """:func:`sensors_note` from the names of the missing sensors (as a result stored them)."""
    if not missing:
        return None
    return (f"sensors missing on this device: {', '.join(missing)} — what they watch (background load, "
            f"throttling, heat) could not be checked, so 'clean' means clean by the sensors there are")


class watch:
    """Context manager: a background :class:`~edgekit.perf.sampler.Sampler` around a timing with no
    samples of its own; ``.suspect`` is then its :func:`judge` record (whole-run rules only)."""

    def __init__(self, interval_s: float = 0.1):
        from .sampler import Sampler

        self.sampler = Sampler(interval_s=interval_s)
        self.suspect: dict = {"is_suspect": False, "reasons": [], "notes": ["no samples were taken"]}

    def __enter__(self) -> watch:
        self.sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sampler.stop()
        self.suspect = judge(self.sampler.samples, [], [])
