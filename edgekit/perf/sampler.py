"""Watch the machine while a benchmark runs: CPU clock, temperature and competing load.

On laptops and Raspberry Pis the same model can be 2-3x slower because another program took
a core, or because the chip got hot and lowered its clock. A :class:`Sampler` records that
in the background; :func:`assess` turns the samples into "this run is suspect, because ...".

>>> import time
>>> with Sampler(interval_s=0.05) as s:
...     time.sleep(0.12)
>>> len(s.samples) >= 2, sorted(s.summary())[:3]
(True, ['cpu_mhz_mean', 'cpu_mhz_min', 'duration_s'])
>>> assess([]).is_suspect  # no data is not evidence of a bad run
False
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .._errors import ConfigError
from .._sysfs import read
from ..runtime.device import cpu_sensors
from .monitor import Monitor

# 0.1 s: ~10 cheap file reads per sample (< 1 ms), so at most ~1% of one core even on a
# 2-core Pi, yet fine enough to catch a 1-second burst of background load in a short run.
DEFAULT_INTERVAL_S = 0.1

Reading = dict  # one raw reading: every key of a sample except "t", "pressure_pct" and "others_cores"


def read_sensors(root: str | os.PathLike = "/") -> Reading:
    """One raw reading from the machine (or the recorded tree at ``root``); missing -> None.

    >>> sorted(read_sensors())[:2]
    ['cpu_mhz_max_possible', 'cpu_mhz_mean']
    """
    live = Path(root) == Path("/")
    sensors = cpu_sensors(root)  # reuse edgekit.runtime.device: freqs, temps and PSI avg10
    cur = [c.cur_mhz for c in sensors.cpus if c.cur_mhz]
    psi = re.search(r"some .*total=(\d+)", read(Path(root) / "proc/pressure/cpu") or "")
    load1 = os.getloadavg()[0] if live and hasattr(os, "getloadavg") else None  # not on Windows
    return {
        "cpu_mhz_mean": sum(cur) / len(cur) if cur else None,
        "cpu_mhz_max_possible": max((c.max_mhz for c in sensors.cpus if c.max_mhz), default=None),
        "temp_c_max": max((t.celsius for t in sensors.temperatures), default=None),
        "pressure_some_avg10": sensors.cpu_pressure,
        "pressure_total_us": int(psi.group(1)) if psi else None,  # cumulative stall, microseconds
        "load1": load1,
        "cpu_percent": _cpu_percent() if live else None,
        "proc_cpu_s": time.process_time() if live else None,  # this process's CPU seconds, all threads
        "ncpu": os.cpu_count() if live else None,
    }


def _cpu_percent() -> float | None:
    try:
        import psutil  # optional: without it we simply do not know
        return float(psutil.cpu_percent(interval=None))  # since the previous call, all CPUs
    except Exception:
        return None


class Sampler:
    """Context manager that samples :func:`read_sensors` every ``interval_s`` in a daemon thread
    (a :class:`~edgekit.perf.monitor.Monitor` of its own, or a benchmark's shared one).

    ``read`` replaces the sensor reader (tests script a sequence of readings) and ``clock``
    the time source. One sample is taken on entry and one on exit, so even a run shorter than
    ``interval_s`` has a start and an end. ``sample()`` takes one synchronously.

    >>> readings = iter([{"pressure_total_us": 0}, {"pressure_total_us": 50_000}])
    >>> ticks = iter([0.0, 0.0, 0.1])  # start, first sample, second sample
    >>> s = Sampler(read=lambda: next(readings), clock=lambda: next(ticks))
    >>> s.sample()["pressure_pct"], s.sample()["pressure_pct"]  # 50 ms stalled in 100 ms
    (None, 50.0)
    """

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, root: str | os.PathLike = "/", *,
                 read: Callable[[], Reading] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        if interval_s <= 0:
            raise ConfigError(f"interval_s must be > 0 seconds, got {interval_s!r}")
        self.interval_s, self.root = interval_s, root
        self._read = read or (lambda: read_sensors(root))
        self._clock = clock
        self.samples: list[dict] = []
        self._monitor: Monitor | None = None
        self._lock = threading.Lock()
        self._t0: float | None = None

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Sampler":
        """Sample in a thread of its own; a benchmark instead polls this probe from its one monitor."""
        self._monitor = Monitor(self, period_s=self.interval_s, name="edgekit-sampler").start()
        return self

    def stop(self) -> None:
        """Stop and join the thread (wakes it at once: it waits on an Event, not sleep)."""
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None

    # the probe protocol of edgekit.perf.monitor: begin, poll every interval_s, end
    def begin(self) -> None:
        if Path(self.root) == Path("/"):
            _cpu_percent()  # psutil's first call has no "previous" and answers 0.0: prime it
        self._t0 = self._clock()
        self.samples.clear()
        self.sample()

    def poll(self) -> None:
        self.sample()

    end = poll

    def sample(self) -> dict:
        """Take one reading now, time-stamp it and derive ``pressure_pct`` from the previous one."""
        self._t0 = self._clock() if self._t0 is None else self._t0
        raw = self._read()
        with self._lock:
            s = {"t": self._clock() - self._t0, **raw, "pressure_pct": None, "others_cores": None}
            prev = self.samples[-1] if self.samples else None
            if prev is not None:
                s["pressure_pct"] = _pressure_pct(prev, s)
                s["others_cores"] = _others_cores(prev, s)
            self.samples.append(s)
        return s

    @property
    def origin(self) -> float | None:
        """The ``clock()`` value of the first sample: a sample's ``t`` is seconds since then."""
        return self._t0

    def summary(self, pressure_threshold: float = 20.0) -> dict:
        """Aggregate the samples; keys are always present, values None when unknown."""
        return summarize(self.samples, pressure_threshold)


def _pressure_pct(prev: dict, cur: dict) -> float | None:
    # avg10 is a 10 s moving average, far too slow for a 2 s benchmark; the raw stall counter
    # gives the share of *this* interval in which some task waited for a CPU.
    a, b = prev.get("pressure_total_us"), cur.get("pressure_total_us")
    dt = cur["t"] - prev["t"]
    if a is None or b is None or dt <= 0 or b < a:  # no PSI, no time passed, or counter reset
        return None
    return min(100.0, (b - a) / (dt * 1e6) * 100)  # clamp: timer jitter can exceed 100 a little


def _others_cores(prev: dict, cur: dict) -> float | None:
    # another process's burst: cores busy on the whole machine minus the cores this process used
    pct, ncpu, a, b = cur.get("cpu_percent"), cur.get("ncpu"), prev.get("proc_cpu_s"), cur.get("proc_cpu_s")
    dt = cur["t"] - prev["t"]
    if None in (pct, ncpu, a, b) or dt <= 0:
        return None
    return max(0.0, pct / 100 * ncpu - (b - a) / dt)


def summarize(samples: list[dict], pressure_threshold: float = 20.0) -> dict:
    """Keys: n, duration_s, cpu_mhz_min, cpu_mhz_mean, temp_c_max, pressure_pct_max,
    pressure_pct_mean, pressure_threshold, pressure_fraction_over (share of samples with a
    known pressure_pct that were >= the threshold).

    >>> summarize([])["n"]
    0
    """
    mhz, temp, psi = ([s[k] for s in samples if s.get(k) is not None]
                      for k in ("cpu_mhz_mean", "temp_c_max", "pressure_pct"))
    return {
        "n": len(samples),
        "duration_s": samples[-1]["t"] - samples[0]["t"] if samples else 0.0,
        "cpu_mhz_min": min(mhz, default=None),
        "cpu_mhz_mean": sum(mhz) / len(mhz) if mhz else None,
        "temp_c_max": max(temp, default=None),
        "pressure_pct_max": max(psi, default=None),
        "pressure_pct_mean": sum(psi) / len(psi) if psi else None,
        "pressure_threshold": pressure_threshold,
        "pressure_fraction_over": sum(p >= pressure_threshold for p in psi) / len(psi) if psi else None,
    }


@dataclass
class Assessment:
    """Whether a benchmark run can be trusted. ``reasons`` make it suspect; ``notes`` do not."""

    is_suspect: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = "suspect" if self.is_suspect else "clean"
        return "\n".join([head, *(f"  ! {r}" for r in self.reasons),
                          *(f"  - {n}" for n in self.notes)])


def assess(samples: list[dict], *, pressure_threshold: float = 20.0, suspect_fraction: float = 0.2,
           throttle_drop: float = 0.15, hot_c: float = 80.0) -> Assessment:
    """Flag contention (CPU pressure) and throttling (clock drop, heat); missing data is a note.

    >>> a = assess([{"t": 0, "temp_c_max": 84.0}, {"t": 1, "temp_c_max": 85.0}])
    >>> a.is_suspect, a.reasons[0].split(":")[0]
    (True, 'thermal throttling likely')
    """
    reasons, notes = [], []
    if not samples:
        notes.append("no samples were taken: nothing to judge the run by")
        return Assessment(False, reasons, notes)
    psi = [s["pressure_pct"] for s in samples if s.get("pressure_pct") is not None]
    if not psi:  # fall back to the slow 10 s average rather than to nothing
        psi = [s["pressure_some_avg10"] for s in samples if s.get("pressure_some_avg10") is not None]
    if psi:
        frac = sum(p >= pressure_threshold for p in psi) / len(psi)
        if frac >= suspect_fraction:
            reasons.append(
                f"this run is suspect: CPU pressure >= {pressure_threshold:g}% during "
                f"{frac:.0%} of samples (max {max(psi):.0f}%) — other programs competed for "
                f"the CPU; close other programs and re-run")
    else:
        notes.append("no CPU pressure data on this OS (Linux PSI /proc/pressure/cpu): "
                     "background load could not be checked")
    mhz = [s["cpu_mhz_mean"] for s in samples if s.get("cpu_mhz_mean")]
    if mhz:
        drop = 1 - min(mhz) / mhz[0]
        if drop >= throttle_drop:
            reasons.append(
                f"CPU frequency fell {drop:.0%} below its starting level during the run "
                f"({mhz[0]:.0f} -> {min(mhz):.0f} MHz) — throttling; let the device cool, "
                f"plug in power, and re-run")
    else:
        notes.append("no CPU frequency data: clock throttling could not be checked")
    temps = [s["temp_c_max"] for s in samples if s.get("temp_c_max") is not None]
    if temps and max(temps) >= hot_c:
        reasons.append(f"thermal throttling likely: {max(temps):.0f} °C (>= {hot_c:g} °C) — "
                       f"let the device cool (add a heatsink or fan) and re-run")
    elif not temps:
        notes.append("no temperature sensor readable: heat could not be checked")
    return Assessment(bool(reasons), reasons, notes)
