"""Energy per inference, where the hardware can tell us — and an honest "not available" where not.

Sources, tried in this order (``root`` points the sysfs probes at a recorded tree):

=================  ===========================================================  ==============
source             where                                                        kind
=================  ===========================================================  ==============
rapl               /sys/class/powercap/intel-rapl:N/energy_uj (package-N)       counter (µJ)
hwmon-energy       /sys/class/hwmon/hwmon*/energy*_input                         counter (µJ)
hwmon-power        /sys/class/hwmon/hwmon*/power*_input                          sampled (µW)
jetson-ina3221     /sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/ VDD_IN rail      sampled (mV·mA)
rpi5-pmic          ``vcgencmd pmic_read_adc`` (sum of V·A over the PMIC rails)  sampled (V·A)
=================  ===========================================================  ==============

Counters are read at start and stop; power sources are sampled in a background thread (a
:class:`~edgekit.perf.monitor.Monitor`) and
integrated with the trapezoid rule, so short runs need ``interval_s`` well below their length.

>>> m = EnergyMeter(root="/nonexistent")
>>> m.available, m.source, m.detail.startswith("no energy or power sensor")
(False, None, True)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._errors import ConfigError
from .._sysfs import listdir
from .monitor import Monitor

SOURCES = ("rapl", "hwmon-energy", "hwmon-power", "jetson-ina3221", "rpi5-pmic")


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    seconds: float
    source: str

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


def joules_per_inference(reading: EnergyReading, n: int) -> float:
    """Energy of one inference, averaged over ``n`` runs.

    >>> joules_per_inference(EnergyReading(2.0, 1.0, "rapl"), 400)
    0.005
    """
    if n <= 0:
        raise ConfigError(f"n must be the number of inferences run (>= 1), got {n}")
    return reading.joules / n


def _read_text(path: Path) -> str:
    """Raises OSError (PermissionError included): callers decide what a failure means."""
    return path.read_text().strip()


def parse_pmic(text: str) -> dict[str, float]:
    """Watts per rail from ``vcgencmd pmic_read_adc`` output; rails lacking V or A are skipped.

    >>> parse_pmic("VDD_CORE_A current(7)=2.0A\\nVDD_CORE_V volt(15)=0.9V\\nEXT5V_V volt(24)=5.1V")
    {'VDD_CORE': 1.8}
    """
    amps = {m[1]: float(m[2]) for m in re.finditer(r"(\S+)_A current\(\d+\)=([\d.]+)A", text)}
    volts = {m[1]: float(m[2]) for m in re.finditer(r"(\S+)_V volt\(\d+\)=([\d.]+)V", text)}
    return {rail: volts[rail] * a for rail, a in amps.items() if rail in volts}


class EnergyMeter:
    """Measure joules between ``start()`` and ``stop()`` with the first source this device has.

    ``run`` replaces the ``vcgencmd pmic_read_adc`` call (tests pass recorded output) and
    ``clock`` the time source. Probing happens here: a few file reads, no thread.

    >>> m = EnergyMeter(root="/nonexistent", run=lambda: "VDD_CORE_A current(7)=2A\\nVDD_CORE_V volt(15)=1V")
    >>> m.source, m.start() is m, m.stop().source, m.trace[0][1]  # watts at the first sample
    ('rpi5-pmic', True, 'rpi5-pmic', 2.0)
    """

    def __init__(self, root: str | os.PathLike = "/", *, interval_s: float = 0.1,
                 run: Callable[[], str] | None = None, clock: Callable[[], float] = time.perf_counter):
        self.root, self.interval_s, self._clock = Path(root), interval_s, clock
        self._counter: Callable[[], dict[str, float]] | None = None  # cumulative J per domain
        self._power: Callable[[], float] | None = None  # instantaneous watts
        self.source: str | None = None
        self.detail = ""
        self._wrap_j: dict[str, float] = {}
        self._probe(run)
        self._monitor: Monitor | None = None
        self.reading: EnergyReading | None = None
        self.trace: list[tuple[float, float]] = []  # (seconds, watts) for sampled sources
        self._t0: float | None = None

    @property
    def available(self) -> bool:
        return self.source is not None

    # ---------------------------------------------------------------- probing
    def _probe(self, run: Callable[[], str] | None) -> None:
        why = [self._rapl(), self._hwmon(), self._ina3221(), self._pmic(run)]
        if self.source is None:
            self.detail = ("no energy or power sensor found on this device: " + "; ".join(why)
                           + ". Latency is still measured; energy is reported as not available.")

    def _rapl(self) -> str:
        cap = self.root / "sys/class/powercap"
        pkgs = [cap / d for d in listdir(cap, r"intel-rapl:\d+")  # not :N:M sub-domains
                if _safe(cap / d / "name").startswith("package")]
        if not pkgs:
            return ("no RAPL powercap (/sys/class/powercap/intel-rapl:*) — needs Linux on "
                    "Intel/AMD, often root-readable only")
        try:
            for d in pkgs:
                _read_text(d / "energy_uj")
                self._wrap_j[str(d)] = int(_safe(d / "max_energy_range_uj") or 0) / 1e6
        except PermissionError:
            return (f"RAPL is present ({pkgs[0]}) but energy_uj is readable by root only (Linux "
                    f"5.10+ restricts it since the PLATYPUS attack) — re-run with sudo, or "
                    f"`sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj`")
        except OSError as e:
            return f"RAPL is present but unreadable: {e}"
        self._counter = lambda: {str(d): int(_read_text(d / "energy_uj")) / 1e6 for d in pkgs}
        self.source = "rapl"
        self.detail = f"RAPL package domains: {', '.join(_safe(d / 'name') for d in pkgs)}"
        return ""

    def _hwmon(self) -> str:
        if self.source:
            return ""
        hw = self.root / "sys/class/hwmon"
        for kind, pattern, scale in (("energy", r"energy\d+_input", 1e-6),
                                     ("power", r"power\d+_input", 1e-6)):
            for h in listdir(hw, r"hwmon\d+"):
                files = [hw / h / f for f in listdir(hw / h, pattern)]
                if not files:
                    continue
                read = lambda files=files: sum(int(_read_text(f)) * scale for f in files)
                try:
                    read()
                except (OSError, ValueError):
                    continue
                self.source = f"hwmon-{kind}"
                if kind == "energy":
                    self._counter = lambda read=read: {"hwmon": read()}
                else:
                    self._power = read
                self.detail = f"{_safe(hw / h / 'name') or h}: sum of {len(files)} {kind} inputs"
                return ""
        return "no hwmon energy*_input or power*_input"

    def _ina3221(self) -> str:
        if self.source:
            return ""
        for d in sorted((self.root / "sys/bus/i2c/drivers/ina3221").glob("*/hwmon/hwmon*")):
            for label in listdir(d, r"in\d+_label"):
                if _safe(d / label) == "VDD_IN":
                    n = label[2:].split("_")[0]
                    # mV x mA = µW; VDD_IN is the whole board's input, the other rails are inside it
                    self._power = lambda d=d, n=n: (int(_read_text(d / f"in{n}_input"))
                                                    * int(_read_text(d / f"curr{n}_input")) / 1e6)
                    self.source = "jetson-ina3221"
                    self.detail = "INA3221 VDD_IN rail only: the board's input power (whole module)"
                    return ""
        return "no Jetson INA3221 VDD_IN rail"

    def _pmic(self, run: Callable[[], str] | None) -> str:
        if self.source:
            return ""
        if run is None:
            if self.root != Path("/") or shutil.which("vcgencmd") is None:
                return "no `vcgencmd` on PATH (Raspberry Pi 5 PMIC)"
            run = _vcgencmd
        try:
            if not parse_pmic(run()):
                return "`vcgencmd pmic_read_adc` gave no rails (needs a Raspberry Pi 5)"
        except (OSError, subprocess.SubprocessError) as e:
            return f"`vcgencmd pmic_read_adc` failed: {e}"
        self._power = lambda: sum(parse_pmic(run()).values())
        self.source = "rpi5-pmic"
        self.detail = ("Raspberry Pi 5 PMIC rails (sum of V·A): the SoC and memory, "
                       "not USB devices or the 5 V input losses")
        return ""

    # ---------------------------------------------------------------- measuring
    def start(self) -> "EnergyMeter":
        """Start measuring; a sampled source gets a thread of its own (a benchmark instead polls
        this probe from its one :class:`~edgekit.perf.monitor.Monitor`)."""
        if self._counter is not None:
            self.begin()
        else:
            self._monitor = Monitor(self, period_s=self.interval_s, name="edgekit-energy").start()
        return self

    def stop(self) -> EnergyReading:
        """Joules since ``start()``; for sampled sources, over the first to the last sample."""
        if self._t0 is None:
            raise RuntimeError("the meter was not started — call start() before stop()")
        if self._monitor is not None:
            self._monitor.stop()  # ends this probe
            self._monitor = None
        else:
            self.end()
        return self.reading

    # the probe protocol of edgekit.perf.monitor: begin, poll every interval, end
    def begin(self) -> None:
        if not self.available:
            raise RuntimeError(f"energy is not available on this device: {self.detail}")
        self._t0 = self._clock()
        self.trace = []
        if self._counter is not None:
            self._start = self._counter()
        else:
            self.sample()

    def poll(self) -> None:
        if self._power is not None:  # counters are read at begin and end only
            self.sample()

    def end(self) -> None:
        """Set ``reading``: the joules since ``begin``."""
        if self._counter is not None:
            seconds, self._t0 = self._clock() - self._t0, None
            end = self._counter()
            joules = 0.0
            for key, e in end.items():
                delta = e - self._start[key]
                if delta < 0:  # the counter wrapped past max_energy_range_uj
                    delta += self._wrap_j.get(key, 0.0)
                joules += delta
            self.reading = EnergyReading(joules, seconds, self.source)
            return
        self.sample()
        self._t0 = None
        span = self.trace[-1][0] - self.trace[0][0]  # the integral covers exactly this span
        self.reading = EnergyReading(_trapezoid(self.trace), span, self.source)

    def sample(self) -> None:
        """Read the power once (sampled sources); the monitor calls this every ``interval_s``."""
        self.trace.append((self._clock() - self._t0, self._power()))


def _trapezoid(trace: list[tuple[float, float]]) -> float:
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(trace, trace[1:]))


def _safe(path: Path) -> str:
    try:
        return _read_text(path)
    except OSError:
        return ""


def _vcgencmd() -> str:
    return subprocess.run(["vcgencmd", "pmic_read_adc"], capture_output=True, text=True,
                          timeout=2, check=True).stdout
