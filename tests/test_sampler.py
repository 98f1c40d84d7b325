"""edgekit.perf.sampler on this machine, on recorded device trees, and on scripted reading sequences."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edgekit.runtime.device import cpu_sensors
from edgekit.perf.sampler import Sampler, assess, read_sensors, summarize

DEVICES = Path(__file__).parent / "fixtures" / "devices"
SAMPLE_KEYS = {"t", "cpu_mhz_mean", "cpu_mhz_max_possible", "temp_c_max", "pressure_some_avg10",
               "pressure_total_us", "load1", "cpu_percent", "pressure_pct", "proc_cpu_s", "ncpu", "others_cores"}


def scripted(readings, dt=0.1):
    """A Sampler fed a list of raw readings, one per tick of a fake clock ``dt`` apart."""
    it, ticks = iter(readings), iter([0.0] + [i * dt for i in range(len(readings))])
    s = Sampler(read=lambda: next(it), clock=lambda: next(ticks))
    for _ in readings:
        s.sample()
    return s


def reading(mhz=2400.0, temp=55.0, total_us=0, avg10=0.5):
    return {"cpu_mhz_mean": mhz, "cpu_mhz_max_possible": 2400.0, "temp_c_max": temp,
            "pressure_some_avg10": avg10, "pressure_total_us": total_us, "load1": None,
            "cpu_percent": None}


def test_live_run_samples_and_joins_its_thread():
    with Sampler(interval_s=0.1) as s:
        time.sleep(0.35)
    names = [t.name for t in threading.enumerate()]
    assert len(s.samples) >= 2, f"0.35 s at 0.1 s gave {len(s.samples)} samples"
    assert "edgekit-sampler" not in names, f"sampler thread still alive: {names}"
    assert set(s.samples[0]) == SAMPLE_KEYS, sorted(s.samples[0])
    ts = [x["t"] for x in s.samples]
    assert ts == sorted(ts) and ts[-1] >= 0.35, f"timestamps {ts}"
    summary = s.summary()
    assert summary["n"] == len(s.samples), summary


def test_stop_wakes_the_thread_without_waiting_a_whole_interval():
    s = Sampler(interval_s=3600).start()  # an hour: a sleep()-based loop would hang the join
    s.stop()
    assert s._monitor is None and len(s.samples) == 2, f"{len(s.samples)} samples"


@pytest.mark.parametrize("name", ["x86-laptop", "snapdragon"])
def test_fixture_readings_match_device_cpu_sensors(name):
    oracle = cpu_sensors(DEVICES / name)
    r = read_sensors(DEVICES / name)
    cur = [c.cur_mhz for c in oracle.cpus if c.cur_mhz]
    want = {"cpu_mhz_mean": sum(cur) / len(cur) if cur else None,
            "cpu_mhz_max_possible": max((c.max_mhz for c in oracle.cpus if c.max_mhz), default=None),
            "temp_c_max": max(t.celsius for t in oracle.temperatures),
            "pressure_some_avg10": oracle.cpu_pressure}
    assert {k: r[k] for k in want} == pytest.approx(want), f"{name}: got {r}, want {want}"
    total = int((DEVICES / name / "proc/pressure/cpu").read_text().split("total=")[1].split()[0])
    assert r["pressure_total_us"] == total, f"{r['pressure_total_us']} != {total}"
    assert r["load1"] is None and r["cpu_percent"] is None, "live-only fields leaked into a fixture"


def test_fixture_sampler_without_pressure_notes_it_and_is_not_suspect():
    s = Sampler(root=DEVICES / "rpi4", interval_s=3600)
    with s:
        pass
    a = assess(s.samples)
    assert not a.is_suspect, a
    assert any("no CPU pressure data on this OS" in n for n in a.notes), a.notes


def test_pressure_pct_is_counter_delta_over_wall_time():
    totals = [0, 10_000, 80_000, 140_000, 145_000]  # µs of stall, samples 0.1 s apart
    s = scripted([reading(total_us=v) for v in totals])
    got = [x["pressure_pct"] for x in s.samples]
    want = [None] + [(b - a) / 0.1e6 * 100 for a, b in zip(totals, totals[1:])]  # 10, 70, 60, 5
    assert got[0] is None and got[1:] == pytest.approx(want[1:]), f"{got} vs {want}"


def test_contention_in_the_middle_is_flagged_with_its_percentage():
    # clean, then a background job stalls us 63% and 40% of two intervals out of five
    totals = [0, 1_000, 64_000, 104_000, 105_000, 106_000]
    s = scripted([reading(total_us=v) for v in totals])
    a = assess(s.samples)
    assert a.is_suspect, a
    msg = a.reasons[0]
    assert "CPU pressure >= 20% during 40% of samples (max 63%)" in msg, msg
    assert "close other programs" in msg and "re-run" in msg, msg
    summ = s.summary()
    assert summ["pressure_fraction_over"] == pytest.approx(0.4), summ
    assert summ["pressure_pct_max"] == pytest.approx(63.0), summ


def test_frequency_drop_is_flagged():
    s = scripted([reading(mhz=m) for m in (3000, 2900, 2600, 2340, 2400)])
    a = assess(s.samples)
    assert a.is_suspect and "CPU frequency fell 22% below its starting level" in a.reasons[0], a
    assert s.summary()["cpu_mhz_min"] == 2340, s.summary()


def test_high_temperature_is_flagged():
    s = scripted([reading(temp=t) for t in (76.0, 79.5, 84.2)])
    a = assess(s.samples)
    assert a.is_suspect and "thermal throttling likely: 84 °C" in a.reasons[0], a
    assert "let the device cool" in a.reasons[0], a.reasons


def test_clean_sequence_is_not_flagged():
    totals = [0, 3_000, 5_000, 9_000, 12_000]  # <= 4% stall
    s = scripted([reading(mhz=2400 - 20 * i, temp=60 + i, total_us=v)
                  for i, v in enumerate(totals)])
    a = assess(s.samples)
    assert not a.is_suspect and not a.reasons and not a.notes, a


def test_missing_data_is_a_note_not_a_verdict():
    empty = {k: None for k in SAMPLE_KEYS - {"t", "pressure_pct"}}
    s = scripted([empty, empty, empty])
    a = assess(s.samples)
    assert not a.is_suspect, a
    assert len(a.notes) == 3, a.notes
    assert summarize(s.samples)["pressure_pct_max"] is None


def test_avg10_is_the_fallback_when_no_total_counter():
    s = scripted([reading(total_us=None, avg10=v) for v in (35.0, 40.0, 5.0)])
    a = assess(s.samples)
    assert a.is_suspect and "(max 40%)" in a.reasons[0], a


def test_bad_interval_is_explained():
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        Sampler(interval_s=0)
