"""One background thread that watches a measurement: every probe polled at one period.

A latency measurement wants to know the process's peak memory (:class:`RssPeak`), what the
machine did meanwhile (:class:`~edgekit.perf.sampler.Sampler`) and the energy spent
(:class:`~edgekit.perf.energy.EnergyMeter`). Each is a *probe*: ``begin()`` in the caller's thread
before the first poll, ``poll()`` in the monitor's thread every ``period_s``, ``end()`` in the
caller's thread after the last. One thread polls them all, so the run under test competes with one
extra thread, not three. A probe whose ``poll`` raises is dropped (its ``error`` says why); the
others go on.

>>> class Count:
...     def begin(self): self.n = 0
...     def poll(self): self.n += 1
...     def end(self): self.n += 100
>>> import time
>>> with Monitor(Count(), period_s=0.01) as mon:
...     time.sleep(0.05)
>>> mon.probes[0].n > 100
True
"""

from __future__ import annotations

import threading
from typing import Protocol


class Probe(Protocol):
    def begin(self) -> None: ...
    def poll(self) -> None: ...
    def end(self) -> None: ...


class Monitor:
    """Context manager: ``begin`` every probe, poll them every ``period_s`` in one daemon thread,
    then stop the thread (at once: it waits on an Event, not ``sleep``) and ``end`` every probe."""

    def __init__(self, *probes: Probe, period_s: float = 0.1, name: str = "edgekit-monitor"):
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0 seconds, got {period_s!r}")
        self.probes, self.period_s, self.name = list(probes), period_s, name
        self.errors: dict[int, BaseException] = {}  # probe index -> why it was dropped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Monitor:
        for p in self.probes:
            p.begin()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        for p in self.probes:
            p.end()

    def _loop(self) -> None:
        live = list(enumerate(self.probes))
        while live and not self._stop.wait(self.period_s):
            for i, p in list(live):
                try:
                    p.poll()
                except Exception as e:  # one broken sensor must not blind the others
                    self.errors[i] = e
                    live.remove((i, p))


class RssPeak:
    """Probe: the highest resident memory of this process seen at ``begin``, each poll and ``end``."""

    def __init__(self):
        import psutil

        self._proc = psutil.Process()
        self.peak = 0

    def _rss(self) -> int:
        return self._proc.memory_info().rss

    def begin(self) -> None:
        self.peak = self._rss()

    def poll(self) -> None:
        self.peak = max(self.peak, self._rss())

    end = poll
