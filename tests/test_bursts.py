"""Bursts caught: timed samples joined with sampler ticks (edgekit.perf.bursts, edgekit.perf.verdict).

The default tests script the sampler's readings (a recorded-style PSI stall counter, clock, others'
load) and synthesise the latency samples, so the oracle is known exactly: which samples ran while the
scripted burst lasted. The slow test runs two real busy processes for 0.6 s inside a 4 s benchmark.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import numpy as np
import pytest

from edgekit.perf.bursts import FREQUENCY, OTHERS, PRESSURE, assess_bursts, mark
from edgekit.perf.sampler import Sampler, assess
from edgekit.perf.verdict import judge, missing_sensors, sensors_note, verdict

TICK = 0.1


def scripted_ticks(duration_s: float, burst: tuple[float, float] | None, *, quiet_pct=2.0, burst_pct=90.0,
                   mhz=None):
    """Sampler ticks every 0.1 s from readings of a PSI ``some total`` counter (microseconds), through
    the real Sampler (scripted read and clock), so pressure_pct is derived as on a device."""
    times = np.round(np.arange(0, duration_s + 1e-9, TICK), 9)
    stalled, readings = 0.0, []
    for i, t in enumerate(times):
        if i:
            busy = burst and burst[0] <= t - TICK / 2 < burst[1]
            stalled += (burst_pct if busy else quiet_pct) / 100 * TICK * 1e6
        readings.append({"pressure_total_us": int(stalled), "cpu_mhz_mean": mhz(t) if mhz else None})
    it, clock = iter(readings), iter(times)  # the clock is read once per sample
    s = Sampler(read=lambda: next(it), clock=lambda: float(next(clock)))
    s._t0 = 0.0  # the scripted clock starts at 0
    for _ in times:
        s.sample()
    return s.samples


def synthetic_run(duration_s: float, burst: tuple[float, float] | None, seed=0, base_ms=9.0, slow=2.0):
    """Back-to-back samples (starts, ms): lognormal around ``base_ms``; ``slow`` times longer in the burst."""
    rng = np.random.default_rng(seed)
    starts, ms, t = [], [], 0.25  # measured phase starts after a warm-up
    while t < duration_s - 0.05:
        d = base_ms * rng.lognormal(0, 0.05)
        if burst and burst[0] <= t < burst[1]:
            d *= slow
        starts.append(t)
        ms.append(d)
        t += d / 1e3
    return starts, ms


def truth(starts, ms, burst):
    return [burst[0] < s + d / 1e3 and s < burst[1] for s, d in zip(starts, ms)]


def test_short_burst_passes_the_whole_run_rule_but_is_caught_per_sample():
    burst = (2.0, 2.6)  # two hogs for 0.6 s of a 4 s run
    ticks = scripted_ticks(4.5, burst)
    starts, ms = synthetic_run(4.5, burst)
    assert not assess(ticks).is_suspect  # the old rule: 6 of 45 ticks (13%) under its 20% share
    b = assess_bursts(starts, ms, ticks)
    assert mark(starts, ms, ticks) == truth(starts, ms, burst)
    assert b.n_marked == sum(truth(starts, ms, burst)) and b.kinds == {PRESSURE: b.n_marked}
    clean = np.array([d for d, m in zip(ms, truth(starts, ms, burst)) if not m])
    assert b.p99_unmarked == pytest.approx(np.percentile(clean, 99))
    assert b.p99_all > 1.5 * b.p99_unmarked  # the burst doubled the tail...
    assert b.is_suspect and "CPU pressure overlapped" in b.reasons[0], b.reasons  # ...and is flagged
    rec = judge(ticks, starts, ms)
    assert rec["is_suspect"] and rec["kinds"] == [PRESSURE] and rec["bursts"]["n_marked"] == b.n_marked
    assert verdict(rec) == f"suspect: CPU pressure ({b.n_marked}/{b.n} samples marked)"


def test_quiet_run_is_clean_and_its_tails_agree():
    ticks = scripted_ticks(4.5, None)
    starts, ms = synthetic_run(4.5, None)
    rec = judge(ticks, starts, ms)
    assert not rec["is_suspect"] and rec["bursts"]["n_marked"] == 0, rec["reasons"]
    assert rec["bursts"]["p99_unmarked"] == rec["bursts"]["p99_all"] == pytest.approx(np.percentile(ms, 99))
    assert verdict(rec) == "clean"


def test_a_short_pressured_spell_is_suspect_only_if_the_tail_depends_on_it():
    burst = (2.0, 2.2)  # two ticks: about 3-4% of the samples, under the 5% share
    ticks = scripted_ticks(4.5, burst)
    for slow, suspect in ((1.0, False), (1.5, True)):
        starts, ms = synthetic_run(4.5, burst, base_ms=2.0, slow=slow)
        b = assess_bursts(starts, ms, ticks)
        assert 0 < b.share < 0.05
        assert b.is_suspect == suspect, (slow, b.tail_ratio, b.reasons)
    assert "the tail depends on them" in b.reasons[0]


def test_clock_drop_and_other_processes_mark_their_intervals():
    ticks = scripted_ticks(2.0, None, mhz=lambda t: 1500.0 if 1.0 < t <= 1.3 else 2400.0)
    ticks[6]["others_cores"] = 1.4  # the 0.5-0.6 s interval: another process took more than a core
    starts, ms = synthetic_run(2.0, None)
    rec = judge(ticks, starts, ms)["bursts"]
    assert rec["kinds"][FREQUENCY] == sum(1.0 < s + d / 1e3 and s < 1.3 for s, d in zip(starts, ms))
    assert rec["kinds"][OTHERS] == sum(0.5 < s + d / 1e3 and s < 0.6 for s, d in zip(starts, ms))


def test_samples_outside_the_sampler_watch_are_unmarked_and_lengths_must_agree():
    ticks = [{"t": 1.0}, {"t": 1.1, "pressure_pct": 99.0}]
    assert mark([0.0, 1.05, 2.0], [1.0, 1.0, 1.0], ticks) == [False, True, False]
    assert mark([0.0], [1.0, 1.0], ticks) == [False, False]  # no timestamps for every sample: no marks
    assert mark([1.05], [1.0], ticks[:1]) == [False]  # one tick is no interval


def test_verdict_over_blocks_results_and_missing_sensors():
    bad = {"is_suspect": True, "reasons": ["this run is suspect: CPU pressure >= 20% during 40% of samples"],
           "notes": ["no CPU frequency data: clock throttling could not be checked"]}
    good = {"is_suspect": False, "reasons": [], "notes": ["no temperature sensor readable: heat could not be checked"]}
    assert verdict([bad] * 9 + [good]) == "suspect: CPU pressure in 9/10 blocks"
    assert verdict({"suspect": bad}) == "suspect: CPU pressure"  # a result dict; old records have no kinds
    assert verdict({"suspect": {"is_suspect": False, "blocks": [bad, good]}}) == "suspect: CPU pressure in 1/2 blocks"
    assert missing_sensors([{"suspect": bad}, {"suspect": good}]) == ["CPU frequency", "temperature"]
    assert sensors_note({"suspect": {"is_suspect": False, "missing": []}}) is None
    assert "CPU frequency" in sensors_note([bad])


def _hog(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.slow
def test_real_two_process_burst_in_a_4s_run_is_flagged():
    from edgekit.perf.bench import time_call

    def burst():
        time.sleep(2.0)
        hogs = [mp.get_context("spawn").Process(target=_hog, args=(0.6,)) for _ in range(2)]
        for h in hogs:
            h.start()
        for h in hogs:
            h.join()

    def work():  # about 2 ms of numpy on one core
        a = np.ones((160, 160))
        a @ a

    th = threading.Thread(target=burst)
    th.start()
    r = time_call(work, name="matmul", min_s=4.0, warmup_s=0.3, max_s=8.0)
    th.join()
    assert r.suspect["is_suspect"], r.suspect
    assert r.suspect.get("bursts", {}).get("n_marked", 0) > 0 or r.suspect["kinds"], r.suspect
    assert verdict(r).startswith("suspect:")
