"""``edgekit doctor --grading``: which layers of the fence hold on this machine, tried for real.

A forked child plays the judge (its own scratch tmpfs), forks one fenced student process as
grading would, and the student process reports what it finds from inside: its uid, its
``/dev``, its environment, whether ``keyctl`` is refused, its cgroup, its scratch. Each layer
becomes one row of the doctor's table, present or missing, with what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT_S = 20.0
_ROOT_FIX = "run `edgekit grade` as root (sudo), or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"


def _judge(w: int) -> None:
    from .lab import Limits
    from .process import StudentProcess
    from .sandbox import private_scratch

    limits = Limits(memory_mb=512, processes=64, disk_mb=16)
    scratch = Path(tempfile.mkdtemp(prefix="edgekit-doctor-")).resolve()
    try:
        tmpfs = private_scratch(scratch, limits.disk_mb)
        p = StudentProcess.start(scratch, [], limits, True, probe=True)
        try:
            fence = p.fenced(time.monotonic() + TIMEOUT_S)
        except Exception as exc:  # the child's traceback is its output
            fence = {"error": f"{exc}: {p.close()[0][-1500:]}"}
        else:
            p.close()
        os.write(w, json.dumps({"fence": fence, "tmpfs_problem": tmpfs}).encode())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_probe() -> dict:
    """Fork a judge-like child that starts one fenced student process; its report, or an error."""
    if not hasattr(os, "fork"):
        return {"error": "no os.fork on this platform (grade under Linux or WSL)"}
    r, w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            _judge(w)
        except BaseException as exc:
            os.write(w, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    data, end = b"", time.monotonic() + TIMEOUT_S
    os.set_blocking(r, False)
    while time.monotonic() < end:
        try:
            chunk = os.read(r, 1 << 16)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not chunk:
            break
        data += chunk
    os.close(r)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    try:
        return json.loads(data or b"{}") or {"error": "the probe printed nothing"}
    except ValueError:
        return {"error": f"the probe's report is not JSON: {data[:200]!r}"}


def layers(report: dict) -> list[tuple[str, bool, str, str | None, bool]]:
    """(layer, present, detail, fix, required) rows from :func:`run_probe`'s report."""
    if "error" in report:
        return [("fence", False, f"the probe failed: {report['error']}", _ROOT_FIX, True)]
    f, inside = report.get("fence", {}), report.get("fence", {}).get("probe", {})
    level, cg = f.get("level", ""), f.get("cgroup", {})
    devs = set(inside.get("dev", []))
    extra_devs = sorted(devs - {"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr", "shm"})
    version = cg.get("version", "")
    cg_fix = "run as root on a host with cgroup v1 or v2 mounted at /sys/fs/cgroup; or grade with --unsafe-no-cgroups"
    rows = [
        ("namespaces (mount, PID, net, IPC, UTS)", level in ("root", "userns"), f"level: {level}", _ROOT_FIX, True),
        ("user namespace (unprivileged student)", bool(f.get("user")) and inside.get("uid") != 0 or level == "userns",
         f"{f.get('user', 'none')}; uid inside {inside.get('uid')}", _ROOT_FIX, True),
        ("allow-list root (pivot_root)", bool(f.get("root")), f"/ holds {', '.join(inside.get('root_entries', []))}",
         _ROOT_FIX, True),
        ("minimal /dev", bool(devs) and not extra_devs, f"/dev: {', '.join(sorted(devs))}", _ROOT_FIX, True),
        ("seccomp filter", f.get("seccomp_mode") == "2" and inside.get("keyctl") == "EPERM",
         f"mode {f.get('seccomp_mode')}, keyctl -> {inside.get('keyctl')}; {f.get('seccomp', '')}",
         "a Linux kernel with CONFIG_SECCOMP_FILTER on x86_64 or aarch64", False),
        ("no_new_privs, no capabilities", f.get("no_new_privs") is True and f.get("capabilities") == 0,
         f"no_new_privs {f.get('no_new_privs')}, CapEff {f.get('capabilities')}", _ROOT_FIX, True),
    ]
    for ctrl in ("memory", "pids", "cpu", "devices"):
        note = "" if ctrl != "devices" or version != "v2" else " (v2: the fence's own /dev does it)"
        rows.append((f"cgroup {ctrl}", bool(cg.get(ctrl)), f"{version or 'no cgroup'}{note}", cg_fix,
                     ctrl in ("memory", "pids")))
    scratch = f.get("scratch", "")
    rows.append(("scratch on a size-capped tmpfs", scratch.startswith("tmpfs"),
                 scratch + (f" ({report.get('tmpfs_problem')})" if report.get("tmpfs_problem") else ""),
                 "run as root: the judge mounts the tmpfs in a mount namespace of its own", False))
    rows.append(("clean environment (/proc/self/environ)", inside.get("environ_bytes") == 0,
                 f"{inside.get('environ_bytes')} bytes of environment inside", None, True))
    return rows


def checks() -> list[tuple[str, str, str, str | None]]:
    """The rows as ``(name, level, detail, fix)`` for the doctor's table: level "ok", or for a missing
    layer "fail" if grading needs it, else "warn"."""
    if not sys.platform.startswith("linux"):
        return [("grading fence", "warn", f"{sys.platform}: no namespaces, cgroups or seccomp; submissions "
                 "run with rlimits only", "grade on Linux (or WSL) for the full fence")]
    return [(f"fence: {name}", "ok" if present else ("fail" if required else "warn"), detail,
             None if present else fix) for name, present, detail, fix, required in layers(run_probe())]
