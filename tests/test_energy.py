"""edgekit.perf.energy against recorded sensor trees (tests/fixtures/energy/*); no hardware needed."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from edgekit.perf import energy
from edgekit.perf.energy import EnergyMeter, EnergyReading, joules_per_inference, parse_pmic

FIXTURES = Path(__file__).parent / "fixtures" / "energy"
PKG = "sys/class/powercap/intel-rapl:0"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def rapl(tmp_path):
    root = tmp_path / "rapl"
    shutil.copytree(FIXTURES / "rapl-x86", root)
    return root


def test_rapl_delta_counts_package_domains_only(rapl):
    clock = FakeClock()
    m = EnergyMeter(root=rapl, clock=clock)
    assert (m.available, m.source) == (True, "rapl"), m.detail
    start_uj = int((rapl / PKG / "energy_uj").read_text())
    m.start()
    shutil.copy(rapl / "later/intel-rapl:0.energy_uj", rapl / PKG / "energy_uj")  # time passes
    # sub-domain (core) and psys move too; they must not be added to the package
    (rapl / "sys/class/powercap/intel-rapl:0:0/energy_uj").write_text("21009311872\n")
    (rapl / "sys/class/powercap/intel-rapl:1/energy_uj").write_text("99976543210\n")
    clock.now = 2.0
    r = m.stop()
    want = (int((rapl / PKG / "energy_uj").read_text()) - start_uj) / 1e6  # 12.4 J
    assert r == EnergyReading(pytest.approx(want), 2.0, "rapl"), f"{r} vs {want} J"
    assert r.watts == pytest.approx(want / 2), r.watts


def test_rapl_wraparound_adds_the_counter_range(rapl):
    max_uj = int((rapl / PKG / "max_energy_range_uj").read_text())
    (rapl / PKG / "energy_uj").write_text(f"{max_uj - 3_000_000}\n")  # 3 J before the wrap
    m = EnergyMeter(root=rapl, clock=FakeClock()).start()
    (rapl / PKG / "energy_uj").write_text("2000000\n")  # 2 J after it
    r = m.stop()
    assert r.joules == pytest.approx(5.0), f"wrapped delta {r.joules} J, want 5.0 J"


def test_rapl_permission_denied_says_root(rapl, monkeypatch):
    real = energy._read_text

    def denied(path):  # what a non-root user gets on Linux 5.10+ (tests may run as root)
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(energy, "_read_text", denied)
    m = EnergyMeter(root=rapl)
    assert not m.available and m.source is None, m.source
    assert "root" in m.detail and "sudo" in m.detail, m.detail
    with pytest.raises(RuntimeError, match="not available on this device"):
        m.start()


def test_hwmon_power_is_integrated_with_the_trapezoid_rule(tmp_path):
    root = tmp_path / "hw"
    shutil.copytree(FIXTURES / "hwmon-power", root)
    power = root / "sys/class/hwmon/hwmon1/power1_input"
    clock = FakeClock()
    m = EnergyMeter(root=root, interval_s=3600, clock=clock)  # we sample by hand; thread idles
    assert (m.source, m.detail) == ("hwmon-power", "ina226: sum of 1 power inputs"), m.detail
    times, watts = [0.0, 0.5, 1.0, 2.0], [4.25, 6.0, 5.0, 3.0]
    power.write_text(f"{int(watts[0] * 1e6)}\n")
    m.start()
    for t, w in zip(times[1:-1], watts[1:-1]):
        clock.now = t
        power.write_text(f"{int(w * 1e6)}\n")
        m.sample()
    clock.now = times[-1]
    power.write_text(f"{int(watts[-1] * 1e6)}\n")
    r = m.stop()
    hand = 0.5 * (4.25 + 6) / 2 + 0.5 * (6 + 5) / 2 + 1.0 * (5 + 3) / 2  # 2.5625 + 2.75 + 4
    assert r.joules == pytest.approx(hand) == pytest.approx(np.trapezoid(watts, times)), \
        f"{r.joules} J vs trapezoid {hand} J"
    assert r.seconds == 2.0 and m._monitor is None, r


def test_hwmon_power_background_thread_samples_and_stops(tmp_path):
    m = EnergyMeter(root=FIXTURES / "hwmon-power", interval_s=0.01)
    m.start()
    threading.Event().wait(0.05)
    r = m.stop()
    names = [t.name for t in threading.enumerate()]
    assert "edgekit-energy" not in names, names
    assert len(m.trace) >= 2 and r.joules == pytest.approx(4.25 * r.seconds), (m.trace, r)


def test_jetson_ina3221_uses_vdd_in_volts_times_amps():
    clock = FakeClock()
    m = EnergyMeter(root=FIXTURES / "jetson-ina3221", interval_s=3600, clock=clock)
    assert m.source == "jetson-ina3221" and "VDD_IN" in m.detail, (m.source, m.detail)
    m.start()
    clock.now = 3.0
    r = m.stop()
    vdd_in_w = 5.072 * 1.184  # in1_input 5072 mV x curr1_input 1184 mA; other rails excluded
    assert r.watts == pytest.approx(vdd_in_w), f"{r.watts} W vs {vdd_in_w} W"
    assert r.joules == pytest.approx(3 * vdd_in_w), r


def test_rpi5_pmic_recorded_output():
    text = (FIXTURES / "rpi5-pmic/pmic_read_adc.txt").read_text()
    rails = parse_pmic(text)
    assert len(rails) == 12 and "EXT5V" not in rails and "BATT" not in rails, sorted(rails)
    assert rails["VDD_CORE"] == pytest.approx(2.80912 * 0.8837), rails["VDD_CORE"]
    # oracle: pair every "X_A ...=aA" line with its "X_V ...=vV" line by splitting text by hand
    vals = {ln.split()[0]: float(ln.split("=")[1][:-1]) for ln in text.splitlines() if "=" in ln}
    total = sum(a * vals[k[:-2] + "_V"] for k, a in vals.items()
                if k.endswith("_A") and k[:-2] + "_V" in vals)
    clock = FakeClock()
    m = EnergyMeter(root=FIXTURES / "empty-does-not-exist", run=lambda: text, interval_s=3600,
                    clock=clock)
    assert m.source == "rpi5-pmic", m.detail
    m.start()
    clock.now = 0.5
    r = m.stop()
    assert r.watts == pytest.approx(total) and r.joules == pytest.approx(total / 2), (r, total)


def test_empty_root_is_not_available_and_says_why(tmp_path):
    m = EnergyMeter(root=tmp_path)
    assert not m.available and m.source is None
    for part in ("not available", "no RAPL powercap", "hwmon", "INA3221", "vcgencmd"):
        assert part in m.detail, f"{part!r} missing from: {m.detail}"


def test_joules_per_inference():
    assert joules_per_inference(EnergyReading(12.4, 2.0, "rapl"), 1000) == pytest.approx(0.0124)
    with pytest.raises(ValueError, match="number of inferences"):
        joules_per_inference(EnergyReading(1.0, 1.0, "rapl"), 0)
