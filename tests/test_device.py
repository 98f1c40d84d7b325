"""edgekit.runtime.device against recorded device trees (tests/fixtures/devices/*), and this machine."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.runtime.board import board
from edgekit.runtime.device import cpu_sensors, device_info

FIXTURES = Path(__file__).parent / "fixtures" / "devices"

# What a student would read off each board's spec sheet.
EXPECTED = {
    "x86-laptop": dict(
        machine="x86_64", cpu_model="11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz",
        board=None, board_family=None, logical=8, physical=4,
        isa={"avx", "avx2", "fma", "avx512f", "avx512_vnni"}, not_isa={"amx_tile", "neon"},
        governor="powersave", max_mhz=4700.0, memory_gib=15.4,
        temps={"x86_pkg_temp": 52.0, "acpitz": 46.0, "coretemp Package id 0": 52.0},
        pressure=1.52),
    "rpi4": dict(
        machine="aarch64", cpu_model="Cortex-A72", board="Raspberry Pi 4 Model B Rev 1.4",
        board_family="rpi4", logical=4, physical=4, isa={"neon"},
        not_isa={"dotprod", "i8mm", "fp16", "avx2"}, governor="ondemand", max_mhz=1500.0,
        memory_gib=7.6, temps={"cpu-thermal": 47.712}, pressure=None),
    "rpi5": dict(
        machine="aarch64", cpu_model="Cortex-A76", board="Raspberry Pi 5 Model B Rev 1.0",
        board_family="rpi5", logical=4, physical=4, isa={"neon", "dotprod", "fp16"},
        not_isa={"i8mm", "sve"}, governor="ondemand", max_mhz=2400.0, memory_gib=7.9,
        temps={"cpu-thermal": 52.35, "rp1_adc temp1": 51.498}, pressure=None),
    "jetson-orin-nano": dict(
        machine="aarch64", cpu_model="Cortex-A78AE",
        board="NVIDIA Jetson Orin Nano Developer Kit (L4T R36.3.0)", board_family="jetson",
        logical=6, physical=6, isa={"neon", "dotprod", "fp16"}, not_isa={"i8mm", "bf16"},
        governor="schedutil", max_mhz=1510.4, memory_gib=7.4,
        temps={"cpu-thermal": 48.593, "gpu-thermal": 46.843, "soc0-thermal": 47.031},
        pressure=0.0),
    "snapdragon": dict(
        machine="aarch64", cpu_model="Qualcomm Oryon",
        board="Qualcomm Technologies, Inc. X1E80100 CRD", board_family="snapdragon",
        logical=12, physical=12, isa={"neon", "dotprod", "i8mm", "fp16", "bf16"},
        not_isa={"sve", "sve2"}, governor="schedutil", max_mhz=4012.8, memory_gib=30.7,
        temps={"cpu0-0-top-thermal": 44.3, "gpuss-0-thermal": 40.2}, pressure=0.12),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_identified(name):
    info, want = device_info(FIXTURES / name), EXPECTED[name]
    got = {"machine": info.machine, "cpu_model": info.cpu_model, "board": info.board,
           "board_family": info.board_family, "logical": info.logical_cores,
           "physical": info.physical_cores, "governor": info.governor, "max_mhz": info.max_mhz,
           "memory_gib": round(info.memory_total_bytes / 2**30, 1), "pressure": info.cpu_pressure}
    for key, value in got.items():
        assert value == want[key], f"{name}: {key} expected {want[key]!r}, got {value!r}"
    assert want["isa"] <= set(info.isa), f"{name}: ISA {info.isa} lacks {want['isa'] - set(info.isa)}"
    assert not want["not_isa"] & set(info.isa), f"{name}: ISA {info.isa} should not have {want['not_isa']}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_alone_reads_the_same_spec_sheet(name):
    assert board(FIXTURES / name) == (EXPECTED[name]["board"], EXPECTED[name]["board_family"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_temperatures_are_celsius(name):
    temps = {t.sensor: t.celsius for t in cpu_sensors(FIXTURES / name).temperatures}
    for sensor, celsius in EXPECTED[name]["temps"].items():
        assert temps.get(sensor) == pytest.approx(celsius), f"{name}: {sensor} expected {celsius} °C, got {temps}"
    assert all(20 <= c <= 60 for c in temps.values()), f"{name}: implausible (millidegrees?) {temps}"


def test_each_sensor_counted_once_and_unreadable_zones_skipped():
    rpi4 = [t.sensor for t in cpu_sensors(FIXTURES / "rpi4").temperatures]
    # hwmon0 "cpu_thermal" is the cpu-thermal zone again; rpi_volt has no temperature at all
    assert rpi4 == ["cpu-thermal"], f"rpi4 sensors: {rpi4}"
    jetson = [t.sensor for t in cpu_sensors(FIXTURES / "jetson-orin-nano").temperatures]
    assert "tj-thermal" not in jetson and len(jetson) == 8, f"jetson sensors (tj-thermal reads empty): {jetson}"


def test_per_cpu_frequencies_keep_clusters_apart():
    cpus = cpu_sensors(FIXTURES / "snapdragon").cpus
    got = [(c.cpu, c.max_mhz) for c in cpus]
    assert [c for c, _ in got] == list(range(12)), f"cpus out of order: {got}"
    assert {m for _, m in got[:8]} == {3417.6} and {m for _, m in got[8:]} == {4012.8}, got


def test_fingerprint_stable_distinct_and_blind_to_sensors(tmp_path):
    prints = {n: device_info(FIXTURES / n).fingerprint for n in EXPECTED}
    again = {n: device_info(FIXTURES / n).fingerprint for n in EXPECTED}
    assert prints == again, f"fingerprints changed between two calls: {prints} vs {again}"
    assert len(set(prints.values())) == len(prints), f"two fixtures share a fingerprint: {prints}"

    root = shutil.copytree(FIXTURES / "rpi4", tmp_path / "rpi4")
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("81234\n")  # a hot board
    (root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").write_text("1500000\n")
    hot = device_info(root)
    assert hot.temperatures[0].celsius == 81.234, hot.temperatures
    assert hot.fingerprint == prints["rpi4"], \
        f"a temperature changed the fingerprint: {hot.fingerprint} vs {prints['rpi4']}"

    meminfo = root / "proc/meminfo"  # but a board with twice the memory is another device
    meminfo.write_text(meminfo.read_text().replace("7998288", "15996576"))
    assert device_info(root).fingerprint != prints["rpi4"], "doubling the memory kept the fingerprint"


def test_big_little_and_unknown_cores(tmp_path):
    block = ("processor\t: {i}\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"
             "CPU architecture: 8\nCPU part\t: {part}\n")
    parts = ["0xd05"] * 4 + ["0xd41"] * 3 + ["0xd44"]  # e.g. a Snapdragon 888 phone under Linux
    (tmp_path / "proc").mkdir()
    cpuinfo = "\n".join(block.format(i=i, part=p) for i, p in enumerate(parts))
    (tmp_path / "proc/cpuinfo").write_text(cpuinfo)
    info = device_info(tmp_path)
    assert info.cpu_model == "4x Cortex-A55 + 3x Cortex-A78 + 1x Cortex-X1", info.cpu_model
    (tmp_path / "proc/cpuinfo").write_text(block.format(i=0, part="0xfff"))
    unknown = device_info(tmp_path).cpu_model
    assert unknown == "implementer 0x41 part 0xfff", unknown


def test_empty_root_gives_nones_not_errors(tmp_path):
    info = device_info(tmp_path)
    hardware = {k: getattr(info, k) for k in ("machine", "cpu_model", "logical_cores", "physical_cores",
                                              "memory_total_bytes", "board", "board_family",
                                              "cpu_pressure", "governor", "max_mhz")}
    assert set(hardware.values()) == {None}, hardware
    assert info.isa == info.cpus == info.temperatures == (), (info.isa, info.cpus, info.temperatures)
    assert info.python and info.fingerprint, "interpreter facts still come from the running Python"
    assert "PC" in str(info), str(info)


def test_this_machine_is_described_and_json_serialisable():
    info = device_info()
    d = info.to_dict()
    assert json.loads(json.dumps(d)) == d, "to_dict() does not survive a JSON round trip"
    assert d["schema"] == "edgekit.device/1" and len(info.fingerprint) == 12, d
    assert info.logical_cores and info.logical_cores >= 1, info.logical_cores
    assert info.memory_total_bytes and info.memory_total_bytes > 2**27, info.memory_total_bytes
    assert "CPUExecutionProvider" in info.providers, info.providers
    assert info.fingerprint in info.table() and info.fingerprint == device_info().fingerprint


def test_cpu_sensors_never_spawn_a_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"cpu_sensors() started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    for root in ["/", *(FIXTURES / n for n in EXPECTED)]:
        json.dumps(cpu_sensors(root).to_dict())


@settings(max_examples=40, deadline=None)
@given(cpuinfo=st.text(), temp=st.text(), psi=st.text())
def test_garbage_files_never_raise(cpuinfo, temp, psi):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for rel, text in [("proc/cpuinfo", cpuinfo), ("sys/class/thermal/thermal_zone0/temp", temp),
                          ("proc/pressure/cpu", psi), ("proc/meminfo", temp)]:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8", errors="surrogatepass")
        json.dumps(device_info(root).to_dict())


def test_boards_are_found_without_a_device_tree(tmp_path):
    # containers often hide /sys/firmware: the cpuinfo "Model" line and nv_tegra_release still tell
    rpi = shutil.copytree(FIXTURES / "rpi4", tmp_path / "rpi4")
    shutil.rmtree(rpi / "sys/firmware")
    info = device_info(rpi)
    assert (info.board, info.board_family) == ("Raspberry Pi 4 Model B Rev 1.4", "rpi4"), info.board
    jetson = shutil.copytree(FIXTURES / "jetson-orin-nano", tmp_path / "jetson")
    shutil.rmtree(jetson / "sys/firmware")
    shutil.rmtree(jetson / "proc/device-tree")
    info = device_info(jetson)
    assert (info.board, info.board_family) == ("NVIDIA Jetson (L4T R36.3.0)", "jetson"), info.board
