"""What machine is this? Identity, ISA features and live CPU sensors, for benchmark reports.

Every probe degrades gracefully: a missing file or tool gives ``None`` or ``()``, never an
exception, so the same code runs on Windows, macOS, Linux and ARM boards. ``root`` points the
Linux probes at a recorded tree (``tests/fixtures/devices/rpi4``), so a Raspberry Pi can be
tested on a laptop; OS, Python and package facts always come from the running interpreter.

>>> info = device_info()
>>> len(info.fingerprint), info.fingerprint == device_info().fingerprint
(12, True)
>>> sorted(cpu_sensors().to_dict())
['cpu_pressure', 'cpus', 'temperatures']
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .._sysfs import listdir, read, to_int
from .board import cpu_name, cpuinfo, identify, native_cpu_model, norm_arch, sysctl

SCHEMA = "edgekit.device/1"

# Linux cpuinfo flag -> edgekit's name; only features that change which kernels ORT can pick.
LINUX_FLAGS = {
    "neon": "neon", "asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "fphp": "fp16",
    "asimdhp": "fp16", "bf16": "bf16", "sve": "sve", "sve2": "sve2",
    "avx": "avx", "avx2": "avx2", "fma": "fma", "avx_vnni": "avx_vnni", "avx512f": "avx512f",
    "avx512_vnni": "avx512_vnni", "avx512_bf16": "avx512_bf16", "amx_tile": "amx_tile",
    "amx_int8": "amx_int8", "amx_bf16": "amx_bf16",
}
ISA_ORDER = tuple(dict.fromkeys(LINUX_FLAGS.values()))
_SYSCTL_ISA = {  # macOS: keys a Mac does not have are simply absent from the answer
    "hw.optional.AdvSIMD": "neon", "hw.optional.arm.FEAT_DotProd": "dotprod",
    "hw.optional.arm.FEAT_I8MM": "i8mm", "hw.optional.arm.FEAT_FP16": "fp16",
    "hw.optional.arm.FEAT_BF16": "bf16", "hw.optional.avx1_0": "avx", "hw.optional.avx2_0": "avx2",
    "hw.optional.fma": "fma", "hw.optional.avx512f": "avx512f",
}
# Windows IsProcessorFeaturePresent ids (winnt.h PF_*): it knows no i8mm, bf16, VNNI or AMX.
_WINDOWS_ISA = {39: "avx", 40: "avx2", 41: "avx512f", 19: "neon", 29: "neon", 43: "dotprod"}

# Not in the fingerprint: the sensors (they change every second) and os_release (every OS
# update changes it without making benchmark numbers incomparable).
FINGERPRINT_FIELDS = ("os", "machine", "cpu_model", "logical_cores", "physical_cores", "isa",
                      "board", "python", "onnxruntime", "providers", "packages")


@dataclass(frozen=True)
class CpuFreq:
    cpu: int | None  # None: one OS-wide reading (macOS, Windows via psutil)
    governor: str | None
    cur_mhz: float | None
    max_mhz: float | None


@dataclass(frozen=True)
class Temperature:
    sensor: str
    celsius: float


@dataclass(frozen=True)
class CpuSensors:
    """The readings that change from second to second; cheap to take again and again."""

    cpus: tuple[CpuFreq, ...] = ()
    temperatures: tuple[Temperature, ...] = ()
    cpu_pressure: float | None = None  # % of the last 10 s some task waited for a CPU (Linux PSI)

    def to_dict(self) -> dict:
        return _plain(asdict(self))


@dataclass(frozen=True)
class DeviceInfo:
    """Who this machine is (hardware + software) and how it felt when asked (sensors)."""

    os: str
    os_release: str
    machine: str | None  # normalised: "x86_64", "aarch64", "armv7l"
    cpu_model: str | None
    logical_cores: int | None
    physical_cores: int | None
    isa: tuple[str, ...]
    memory_total_bytes: int | None
    board: str | None
    board_family: str | None  # "rpi4", "rpi5", "jetson", "snapdragon", ... or None on a PC
    python: str
    onnxruntime: str | None
    providers: tuple[str, ...]
    packages: dict[str, str | None] = field(hash=False)
    cpus: tuple[CpuFreq, ...] = ()
    temperatures: tuple[Temperature, ...] = ()
    cpu_pressure: float | None = None
    fingerprint: str = ""

    @property
    def governor(self) -> str | None:
        """The cpufreq governor, or e.g. ``"ondemand/performance"`` when CPUs disagree."""
        return "/".join(dict.fromkeys(c.governor for c in self.cpus if c.governor)) or None

    @property
    def max_mhz(self) -> float | None:
        return max((c.max_mhz for c in self.cpus if c.max_mhz), default=None)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **_plain(asdict(self))}

    def table(self) -> str:
        """A short plain-text summary (no rich markup, so it prints anywhere)."""
        mem = f"{self.memory_total_bytes / 2**30:.1f} GiB" if self.memory_total_bytes else "? GiB"
        hot = max(self.temperatures, key=lambda t: t.celsius, default=None)
        clock = f"{self.governor or '-'}, max {self.max_mhz:.0f} MHz" if self.max_mhz else "-"
        rows = [
            ("device", f"{self.board or 'PC'} ({self.board_family or self.machine})"),
            ("cpu", f"{self.cpu_model}, {self.logical_cores} logical / {self.physical_cores} "
                    f"physical cores, {mem}"),
            ("isa", " ".join(self.isa) or "-"),
            ("clock", clock + (f", {hot.sensor} {hot.celsius:.1f} °C" if hot else "")),
            ("software", f"{self.os} {self.os_release}, Python {self.python}, "
                         f"onnxruntime {self.onnxruntime}"),
            ("providers", ", ".join(self.providers) or "-"),
            ("fingerprint", self.fingerprint),
        ]
        return "\n".join(f"{k:>11}  {v}" for k, v in rows)

    __str__ = table


def device_info(root: str | os.PathLike = "/") -> DeviceInfo:
    """Describe this machine, or take the hardware facts from a recorded Linux tree at ``root``
    (``device_info("tests/fixtures/devices/rpi4").cpu_model`` is ``'Cortex-A72'``).

    >>> info = device_info()
    >>> info.logical_cores >= 1, json.loads(json.dumps(info.to_dict()))["schema"]
    (True, 'edgekit.device/1')
    """
    base = Path(root)
    live = base == Path("/")  # only the real machine may be topped up with psutil/sysctl/winreg
    procs, extra = cpuinfo(base)
    cpu_model = cpu_name(procs) or (native_cpu_model() if live else None)
    board, family = identify(base, procs, extra, cpu_model)
    ort_version, providers = _onnxruntime()
    sensors = cpu_sensors(root)
    info = DeviceInfo(
        os=platform.system(), os_release=platform.release(),
        machine=norm_arch(platform.machine()) if live else _arch_from_cpuinfo(procs),
        cpu_model=cpu_model, **_cores(procs, live),
        isa=_isa(procs) or (_native_isa() if live else ()),
        memory_total_bytes=_memory(base, live), board=board, board_family=family,
        python=platform.python_version(), onnxruntime=ort_version, providers=providers,
        packages={
            "numpy": _version("numpy"), "onnx": _version("onnx"), "edgekit": _version("edgekit"),
            # metadata, not `import cv2` (slow); whichever of the four OpenCV wheels is present
            "opencv": _version("opencv-python", "opencv-python-headless",
                               "opencv-contrib-python", "opencv-contrib-python-headless"),
        },
        cpus=sensors.cpus, temperatures=sensors.temperatures, cpu_pressure=sensors.cpu_pressure,
    )
    identity = {k: getattr(info, k) for k in FINGERPRINT_FIELDS}
    # MemTotal moves by a few MB between kernels; whole GiB is what identifies the machine.
    identity["memory_gib"] = round((info.memory_total_bytes or 0) / 2**30)
    canon = json.dumps(_plain(identity), sort_keys=True, separators=(",", ":"))
    return replace(info, fingerprint=hashlib.sha256(canon.encode()).hexdigest()[:12])


def cpu_sensors(root: str | os.PathLike = "/") -> CpuSensors:
    """Frequencies, temperatures and CPU pressure: file reads only, cheap enough for a sampler.

    >>> all(t.celsius > -60 for t in cpu_sensors().temperatures)
    True
    """
    base = Path(root)
    cpus = _cpufreqs(base)
    if not cpus and base == Path("/") and sys.platform != "linux":
        cpus = _psutil_freq()
    psi = re.search(r"some avg10=([\d.]+)", read(base / "proc/pressure/cpu") or "")
    return CpuSensors(cpus, _temperatures(base), float(psi.group(1)) if psi else None)


# ------------------------------------------------------------ Linux files (real or recorded)

def _arch_from_cpuinfo(procs: list[dict[str, str]]) -> str | None:
    first = procs[0] if procs else {}
    if "flags" in first:  # only x86 kernels write a "flags" line
        return "x86_64" if "lm" in first["flags"].split() else "i686"
    if first.get("CPU architecture") == "8" or "asimd" in first.get("Features", "").split():
        return "aarch64"
    return "armv7l" if "CPU architecture" in first else None


def _isa(procs: list[dict[str, str]]) -> tuple[str, ...]:
    flags = {f for p in procs for f in p.get("flags", p.get("Features", "")).split()}
    found = {LINUX_FLAGS[f] for f in flags if f in LINUX_FLAGS}
    return tuple(n for n in ISA_ORDER if n in found)


def _cores(procs: list[dict[str, str]], live: bool) -> dict[str, int | None]:
    if live:
        try:
            import psutil  # os.cpu_count() cannot tell cores from hyper-threads
            return {"logical_cores": psutil.cpu_count(), "physical_cores": psutil.cpu_count(False)}
        except Exception:  # psutil missing, or a platform it does not know
            return {"logical_cores": os.cpu_count(), "physical_cores": None}
    cores = {(p.get("physical id"), p["core id"]) for p in procs if "core id" in p}
    # ARM cpuinfo has no "core id": these boards have no SMT, so each CPU is a core
    return {"logical_cores": len(procs) or None, "physical_cores": len(cores or procs) or None}


def _memory(base: Path, live: bool) -> int | None:
    if live:
        try:
            import psutil
            return int(psutil.virtual_memory().total)
        except Exception:
            pass
    kb = re.search(r"MemTotal:\s*(\d+) kB", read(base / "proc/meminfo") or "")
    return int(kb.group(1)) * 1024 if kb else None


def _cpufreqs(base: Path) -> tuple[CpuFreq, ...]:
    cpu_dir, out = base / "sys/devices/system/cpu", []
    for name in listdir(cpu_dir, r"cpu\d+"):
        d = cpu_dir / name / "cpufreq"
        gov, cur, mx = (read(d / f) for f in ("scaling_governor", "scaling_cur_freq",
                                                "cpuinfo_max_freq"))
        if gov or cur or mx:  # sysfs speaks kHz
            mhz = [None if to_int(v) is None else to_int(v) / 1000 for v in (cur, mx)]
            out.append(CpuFreq(int(name[3:]), gov, *mhz))
    return tuple(out)


def _temperatures(base: Path) -> tuple[Temperature, ...]:
    temps, zones, hwmon = [], base / "sys/class/thermal", base / "sys/class/hwmon"
    for z in listdir(zones, r"thermal_zone\d+"):
        milli = to_int(read(zones / z / "temp"))  # the kernel reports millidegrees Celsius
        if milli is not None:
            temps.append(Temperature(read(zones / z / "type") or z, milli / 1000))
    zone_names = {t.sensor.replace("-", "_") for t in temps}
    for h in listdir(hwmon, r"hwmon\d+"):
        name = read(hwmon / h / "name") or h
        if name in zone_names:  # thermal zones reappear as hwmon ("cpu_thermal"): count once
            continue
        for f in listdir(hwmon / h, r"temp\d+_input"):
            milli = to_int(read(hwmon / h / f))
            label = read(hwmon / h / f.replace("_input", "_label")) or f.split("_")[0]
            if milli is not None:
                temps.append(Temperature(f"{name} {label}", milli / 1000))
    return tuple(temps)


# ------------------------------------------------------------ the running machine only

def _native_isa() -> tuple[str, ...]:
    flags = sysctl(*_SYSCTL_ISA)
    found = {name for key, name in _SYSCTL_ISA.items() if flags.get(key) == "1"}
    if sys.platform == "win32":
        import ctypes
        present = ctypes.windll.kernel32.IsProcessorFeaturePresent
        found = {name for pf, name in _WINDOWS_ISA.items() if present(pf)}
    return tuple(n for n in ISA_ORDER if n in found)


def _psutil_freq() -> tuple[CpuFreq, ...]:
    try:
        import psutil
        f = psutil.cpu_freq()
        return (CpuFreq(None, None, f.current or None, f.max or None),) if f else ()
    except Exception:  # psutil missing, or no frequency API here (some Apple Silicon Macs)
        return ()


def _onnxruntime() -> tuple[str | None, tuple[str, ...]]:
    try:
        import onnxruntime as ort
        return ort.__version__, tuple(ort.get_available_providers())
    except Exception:  # not installed or broken: `edgekit doctor` says which and what to do
        return None, ()


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _plain(obj):
    """Tuples to lists, recursively, so ``to_dict()`` survives a JSON round trip unchanged."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
