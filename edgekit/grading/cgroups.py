"""Caps for a student's whole process tree: a cgroup per student process, v2 or v1.

rlimits are per process: four children of 1 GiB each pass an ``RLIMIT_AS`` of 1 GiB. A cgroup
counts the whole tree, whatever it forks:

============  ==============================  ==========================================
cap           cgroup v2 (one unified tree)    cgroup v1 (a tree per controller)
============  ==============================  ==========================================
memory        ``memory.max`` (+ swap 0)       ``memory.limit_in_bytes`` (+ ``memsw``)
processes     ``pids.max``                    ``pids.max``
CPU share     ``cpu.weight``                  ``cpu.shares``
devices       (the fence's minimal ``/dev``)  ``devices.deny a`` + the five char devices
============  ==============================  ==========================================

v2 is what Debian 12, Ubuntu 22.04+ and Raspberry Pi OS mount; v1 (or "hybrid") is what older
hosts, and this project's CI machine, have. Groups are named ``edgekit/<judge pid>-<random>``:
one left behind by a killed grader is recognised by its dead pid and removed by the next one.

>>> detect(Path("/nonexistent"))
''
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import CgroupError

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu", "devices")
# /dev/null, zero, full, random, urandom: the only devices inside the fence (sandbox.DEVICES)
V1_DEVICES_ALLOWED = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm")
CPU_WEIGHT = 100  # v2 default: every submission gets an equal share, whatever threads it starts
# the edgekit/ parent competes with the host's other tasks as one: give it the weight of a task per core
PARENT_SHARES = 1024 * (os.cpu_count() or 1)


def detect(root: Path = ROOT) -> str:
    """``"v2"`` (unified), ``"v1"`` (a memory or pids hierarchy), or ``""`` (none mounted)."""
    if (root / "cgroup.controllers").is_file():
        return "v2"
    if (root / "memory").is_dir() or (root / "pids").is_dir():
        return "v1"
    return ""


@dataclass
class Group:
    """One student process's cgroup: a folder per v1 controller, or one v2 folder."""

    version: str
    dirs: list[Path]
    controllers: dict[str, bool] = field(default_factory=dict)  # which caps were written
    problems: list[str] = field(default_factory=list)

    def join(self, pid: int | None = None) -> bool:
        """Move ``pid`` (default: this process) into every folder; False when any refuses."""
        ok = True
        for d in self.dirs:
            try:
                (d / "cgroup.procs").write_text(str(pid or os.getpid()))
            except OSError:
                ok = False
        return ok

    def remove(self, timeout_s: float = 2.0) -> None:
        """Kill what is left inside and remove the folders; never raises (a killed tree needs a moment)."""
        end = time.monotonic() + timeout_s
        for d in reversed(self.dirs):
            while d.is_dir():
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > end:
                        break
                    _kill_members(d)
                    time.sleep(0.001)


def _kill_members(d: Path) -> None:
    try:
        (d / "cgroup.kill").write_text("1")  # v2, Linux >= 5.14: the whole tree at once
        return
    except OSError:
        pass
    try:
        pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _write(path: Path, value: str, problems: list[str]) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError as exc:
        problems.append(f"{path}: {exc.strerror or exc}")
        return False


def create(memory_mb: int, processes: int, root: Path | None = None) -> Group | None:
    """A fresh group capping memory (``memory_mb`` for the tree), processes and CPU share.

    None when no cgroup hierarchy is mounted or none is writable here (not root, no delegation).
    """
    root = root or ROOT
    version = detect(root)
    if not version:
        return None
    name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _remove_stale(root, version)
    return (_create_v2 if version == "v2" else _create_v1)(root, name, memory_mb * 2**20, processes)


def _create_v2(root: Path, name: str, memory: int, processes: int) -> Group | None:
    base = root / "edgekit"
    problems: list[str] = []
    try:
        base.mkdir(exist_ok=True)
        group = base / name
        group.mkdir()
    except OSError:
        return None
    available = set((root / "cgroup.controllers").read_text().split())
    wanted = [c for c in ("memory", "pids", "cpu") if c in available]
    for parent in (root, base):  # a controller's files exist in a child only once its parent delegates it
        _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted), problems)
    if (base / "cpu.weight").exists():
        _write(base / "cpu.weight", str(min(10000, PARENT_SHARES * CPU_WEIGHT // 1024)), problems)
    g = Group("v2", [group], problems=problems)
    g.controllers["memory"] = _write(group / "memory.max", str(memory), problems)
    if (group / "memory.swap.max").exists():
        _write(group / "memory.swap.max", "0", problems)  # swap is memory too
    g.controllers["pids"] = _write(group / "pids.max", str(processes), problems)
    g.controllers["cpu"] = _write(group / "cpu.weight", str(CPU_WEIGHT), problems)
    g.controllers["devices"] = False  # v2 filters devices with BPF: the fence's own /dev does it
    return g


def _create_v1(root: Path, name: str, memory: int, processes: int) -> Group | None:
    g = Group("v1", [])
    for ctrl in V1_CONTROLLERS:
        d = root / ctrl / "edgekit" / name
        try:
            d.mkdir(parents=True)
        except OSError:
            g.controllers[ctrl] = False
            continue
        g.dirs.append(d)
        p = g.problems
        if ctrl == "memory":
            ok = _write(d / "memory.limit_in_bytes", str(memory), p)
            if (d / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: cap memory + swap too
                ok = _write(d / "memory.memsw.limit_in_bytes", str(memory), p) and ok
        elif ctrl == "pids":
            ok = _write(d / "pids.max", str(processes), p)
        elif ctrl == "cpu":
            ok = _write(d / "cpu.shares", "1024", p)
            _write(d.parent / "cpu.shares", str(PARENT_SHARES), p)
        else:  # everything denied, then the five harmless character devices allowed
            ok = _write(d / "devices.deny", "a", p) and all(_write(d / "devices.allow", a, p)
                                                            for a in V1_DEVICES_ALLOWED)
        g.controllers[ctrl] = ok
    return g if g.dirs else None


def _remove_stale(root: Path, version: str) -> None:
    """Groups whose judge is dead (a grader killed with SIGKILL cannot clean up)."""
    bases = [root / "edgekit"] if version == "v2" else [root / c / "edgekit" for c in V1_CONTROLLERS]
    for base in bases:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for n in names:
            m = re.fullmatch(r"(\d{1,10})-[0-9a-f]{8}", n)  # ours only: "<judge pid>-<random>"
            if m and not alive(int(m.group(1))):
                Group(version, [base / n]).remove(timeout_s=0.2)


def alive(pid: int) -> bool:
    """Whether a process of this pid may exist: another user's counts, and so does a number os.kill
    refuses (debris named after it is then left alone, never removed by mistake)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True


def require(root: Path | None = None) -> str:
    """Raise :class:`CgroupError` unless memory and processes can be capped here; return the version."""
    root = root or ROOT
    g = create(64, 64, root)
    if g is None or not (g.controllers.get("memory") and g.controllers.get("pids")):
        found = detect(root) or "none"
        missing = ", ".join(c for c in ("memory", "pids") if not (g and g.controllers.get(c))) or "?"
        if g is not None:
            g.remove()
        raise CgroupError(
            f"cannot cap a submission's memory and processes: cgroup version found: {found}, "
            f"not usable here: {missing} ({'; '.join(g.problems) if g else f'nothing writable under {root}'}). "
            "Without them, one submission can take all memory or fork until the machine stops. "
            "Fix: run `edgekit grade` as root (sudo) on a host with cgroup v1 or v2 mounted at /sys/fs/cgroup "
            "(`edgekit doctor --grading` shows each layer), or pass --unsafe-no-cgroups to grade with "
            "per-process rlimits only")
    g.remove()
    return g.version
