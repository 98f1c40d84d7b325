"""Fakes for Lab 2: a clock and an inference session that take no real time.

Timing code is hard to test with real time: every run gives other numbers. These fakes make it
exact. Like every real timer on a computer reads the same hardware counter, all the fakes share
one *virtual time* (in seconds): a ``FakeSession`` moves it forward by its next scripted latency
each time it runs, and a ``FakeClock`` reads it, as ``time.perf_counter`` reads the real one.
Creating a ``FakeSession`` starts a new experiment: the virtual time goes back to ``start_s``.

>>> session = FakeSession([5.0, 1.5])   # the first run takes 5 ms, the second 1.5 ms
>>> clock = FakeClock()
>>> t0 = clock(); _ = session(); t1 = clock()
>>> round((t1 - t0) * 1000, 9)          # seconds -> milliseconds
5.0
>>> round(clock(), 6)                   # the virtual time does not start at 0, like a real clock
1000.005
"""

from __future__ import annotations

import numpy as np


class VirtualTime:
    """The shared virtual time, in seconds."""

    def __init__(self, start_s: float = 1000.0):
        self.now_s = float(start_s)


WORLD = VirtualTime()  # the one the fakes use unless given another


class FakeClock:
    """A clock like ``time.perf_counter``: ``clock()`` returns the (virtual) time in seconds.

    Reading it takes no time, and only a ``FakeSession`` run moves it forward.
    """

    def __init__(self, time: VirtualTime | None = None):
        self.time = time or WORLD

    def __call__(self) -> float:
        return self.time.now_s

    def __repr__(self) -> str:
        return f"FakeClock(now_s={self.time.now_s!r})"


class FakeSession:
    """An inference session whose runs take the scripted ``latencies_ms``, one after the other.

    ``session()`` or ``session.run(output_names, feed)`` (arguments are ignored) moves the virtual
    time forward by the next latency and returns a dummy output, like
    ``InferenceSession.run``. Running more often than there are latencies is an error: a
    timing harness should run the model exactly ``warmup + runs`` times.
    """

    def __init__(self, latencies_ms, *, start_s: float = 1000.0, time: VirtualTime | None = None):
        self.latencies_ms = [float(v) for v in latencies_ms]
        self.time = time or WORLD
        self.time.now_s = float(start_s)  # a new session starts a new experiment
        self.calls = 0

    def run(self, output_names=None, feed=None):
        if self.calls >= len(self.latencies_ms):
            raise RuntimeError(
                f"FakeSession ran out of scripted latencies: it was run {self.calls + 1} times but has "
                f"only {len(self.latencies_ms)}. Does your harness run the model exactly warmup + runs times?")
        self.time.now_s += self.latencies_ms[self.calls] / 1000.0  # milliseconds -> seconds
        self.calls += 1
        return [np.zeros((1, 10), np.float32)]

    def __call__(self, *args, **kwargs):
        return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FakeSession({len(self.latencies_ms)} latencies, {self.calls} used)"
