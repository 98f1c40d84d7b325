"""Which board is this? The CPU cores and the board family from /proc/cpuinfo and the device tree.

Cheaper than :func:`edgekit.runtime.device.device_info` (no package versions, no sensors, no
hashing): ``"auto"`` provider choice asks this on every ``edgekit.load``. ``root`` points the
probes at a recorded Linux tree (``tests/fixtures/devices/rpi4``), as in ``edgekit.runtime.device``.

>>> board("tests/fixtures/devices/rpi5")
('Raspberry Pi 5 Model B Rev 1.0', 'rpi5')
"""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

from .._sysfs import read, to_int

# (CPU implementer, CPU part) in /proc/cpuinfo -> core (Linux arch/arm64/include/asm/cputype.h)
ARM_CORES = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD41): "Cortex-A78",
    (0x41, 0xD42): "Cortex-A78AE", (0x41, 0xD44): "Cortex-X1", (0x41, 0xD46): "Cortex-A510",
    (0x41, 0xD47): "Cortex-A710", (0x41, 0xD48): "Cortex-X2", (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4B): "Cortex-A78C", (0x41, 0xD4D): "Cortex-A715", (0x41, 0xD4E): "Cortex-X3",
    (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD80): "Cortex-A520", (0x41, 0xD81): "Cortex-A720",
    (0x41, 0xD82): "Cortex-X4", (0x51, 0x001): "Qualcomm Oryon", (0x51, 0x804): "Kryo 4xx Gold",
    (0x51, 0x805): "Kryo 4xx Silver",
}
QUALCOMM = 0x51  # the implementer id of Qualcomm's own cores (Kryo, Oryon)


def board(root: str | os.PathLike = "/") -> tuple[str | None, str | None]:
    """``(board model, family)``; family is ``rpi4``, ``rpi5``, ``jetson``, ``snapdragon``...
    or ``None`` for a PC."""
    base = Path(root)
    procs, extra = cpuinfo(base)
    return identify(base, procs, extra, cpu_name(procs) or (native_cpu_model() if base == Path("/") else None))


def cpuinfo(base: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Per-processor blocks of /proc/cpuinfo, plus the board lines ARM kernels add at the end."""
    procs, extra = [], {}
    for block in (read(base / "proc/cpuinfo") or "").split("\n\n"):
        lines = (ln.partition(":") for ln in block.splitlines() if ":" in ln)
        kv = {k.strip(): v.strip() for k, _, v in lines}
        if "processor" in kv:
            procs.append(kv)
        else:
            extra.update(kv)
    return procs, extra


def cpu_name(procs: list[dict[str, str]]) -> str | None:
    if procs and "flags" in procs[0]:
        return procs[0].get("model name")  # x86 names itself; ARM's "model name" is "ARMv8 ..."
    cores = []
    for p in procs:
        imp, part = to_int(p.get("CPU implementer"), 16), to_int(p.get("CPU part"), 16)
        if imp is not None and part is not None:
            cores.append(ARM_CORES.get((imp, part), f"implementer {imp:#x} part {part:#05x}"))
    kinds = list(dict.fromkeys(cores))
    if len(kinds) > 1:  # big.LITTLE, e.g. "4x Cortex-A78 + 4x Cortex-A55"
        return " + ".join(f"{cores.count(k)}x {k}" for k in kinds)
    return kinds[0] if kinds else (procs[0].get("model name") if procs else None)


def identify(base: Path, procs: list[dict[str, str]], extra: dict[str, str],
           cpu_model: str | None) -> tuple[str | None, str | None]:
    dt = base / "sys/firmware/devicetree/base"
    model = read(dt / "model") or read(base / "proc/device-tree/model") or extra.get("Model")
    compatible = (read(dt / "compatible") or "").lower()
    tegra, hardware = read(base / "etc/nv_tegra_release"), extra.get("Hardware", "")
    text = " ".join(filter(None, [model, hardware, compatible, cpu_model])).lower()
    if "raspberry pi" in text or "raspberrypi," in compatible:
        gen = re.search(r"raspberry pi (?:compute module )?(\d)", text)  # "400" counts as a 4
        return model, f"rpi{gen.group(1)}" if gen else "rpi"
    if tegra or "jetson" in text or "nvidia,tegra" in compatible:
        rel = re.search(r"R(\d+) \(release\), REVISION: ([\d.]+)", tegra or "")
        return (model or "NVIDIA Jetson") + (f" (L4T R{rel[1]}.{rel[2]})" if rel else ""), "jetson"
    qcom_core = any(to_int(p.get("CPU implementer"), 16) == QUALCOMM for p in procs)
    if qcom_core or re.search(r"qualcomm|snapdragon|qcom,", text):
        # Windows on Snapdragon has no device tree, but its CPU name says "Snapdragon"
        return model or hardware or cpu_model, "snapdragon"
    return model, None  # a PC, or a board not known here (its model string still helps)


def norm_arch(machine: str) -> str | None:
    m = machine.lower()  # Windows says AMD64/ARM64, macOS arm64, Linux x86_64/aarch64
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m) or None


def sysctl(*keys: str) -> dict[str, str]:
    if sys.platform != "darwin":
        return {}
    import subprocess

    try:  # one call for all keys; an unknown key only adds an error line on stderr
        out = subprocess.run(["sysctl", *keys], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = (ln.partition(":") for ln in out.splitlines() if ":" in ln)
    return {k.strip(): v.strip() for k, _, v in lines}


def native_cpu_model() -> str | None:
    if sys.platform == "win32":
        try:  # the registry has the marketing name; platform.processor() only "Family 6 ..."
            import winreg
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,
                                r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
                return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
        except OSError:
            pass
    brand = sysctl("machdep.cpu.brand_string").get("machdep.cpu.brand_string")
    return brand or platform.processor() or None
