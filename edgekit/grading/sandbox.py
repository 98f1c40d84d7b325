"""Fence a student's process in, on Linux: namespaces, a read-only world, hidden secrets, limits.

Called in a freshly forked child, before any student code exists in it:

1. a new session and "die with the parent", so a killed grader leaves nothing behind;
2. a pids cgroup (when writable) capping the number of processes — a fork bomb stays small;
3. new mount, PID, network and IPC namespaces (as root, or inside a user namespace otherwise):
   the student's tree dies with its first process, sees no other process and has no network;
4. the lab, the submissions, the grades and the other scratch folders are covered by empty
   read-only tmpfs mounts, and every other mount is remounted read-only, except the scratch folder;
5. rlimits: CPU seconds, address space, file size, open files, no core dumps;
6. every capability dropped (``no_new_privs`` too), so the student cannot undo 3-4.

Elsewhere (macOS, or a kernel that refuses namespaces) only 1 and 5 apply; :func:`enter`
returns the level reached and the grader prints a warning. Python-level tricks (audit hooks,
restricted builtins) are deliberately absent: whatever runs in the student's process can be
undone by the student, which is why verdicts are made in another process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import uuid
from pathlib import Path

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
CGROUP_PIDS = Path("/sys/fs/cgroup/pids")

_FLAG_WORDS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
               "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def make_pids_cgroup(limit: int) -> Path | None:
    """A fresh pids cgroup capped at ``limit`` processes; None when cgroups are not writable here."""
    try:
        group = CGROUP_PIDS / "edgekit" / uuid.uuid4().hex[:12]
        group.mkdir(parents=True)
        (group / "pids.max").write_text(str(limit))
        return group
    except OSError:
        return None


def join_cgroup(group: Path | None) -> bool:
    try:
        (group / "cgroup.procs").write_text(str(os.getpid()))
        return True
    except (OSError, TypeError):
        return False


def remove_cgroup(group: Path | None) -> None:
    import time

    for _ in range(100):  # the kernel empties the group a moment after its last process dies
        try:
            group.rmdir()
            return
        except (FileNotFoundError, AttributeError):
            return
        except OSError:
            time.sleep(0.01)


def unshare() -> str:
    """New mount/PID/net/IPC namespaces; returns ``"root"``, ``"userns"`` or ``""`` (not possible)."""
    if not sys.platform.startswith("linux"):
        return ""
    libc = _libc()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
    if os.geteuid() == 0 and libc.unshare(flags) == 0:
        return "root"
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(flags | CLONE_NEWUSER) != 0:
        return ""
    try:  # map ourselves to root inside the new user namespace, so mounts are allowed
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    except OSError:
        return ""
    return "userns"


def _mounts() -> list[tuple[str, int]]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        flags = 0
        for word in fields[5].split(","):
            flags |= _FLAG_WORDS.get(word, 0)
        out.append((point, flags))
    return out


def fence_files(scratch: Path, hide: list[Path]) -> list[str]:
    """Hide ``hide`` folders, make everything read-only except ``scratch``. Returns problems."""
    libc, problems = _libc(), []
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    keep = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    hidden: list[Path] = []
    for path in sorted({p.resolve() for p in hide if p.exists()}, key=lambda p: len(p.parts)):
        if any(path.is_relative_to(h) for h in hidden) or not path.is_dir():
            continue
        _check(libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          b"size=64k,mode=755"), f"hide {path}")
        hidden.append(path)
    for h in hidden:  # bring our own scratch folder back if it lay under a hidden one
        if scratch.is_relative_to(h):
            os.makedirs(scratch, exist_ok=True)
            _check(libc.mount(f"/proc/self/fd/{keep}".encode(), str(scratch).encode(), None, MS_BIND, None),
                   "expose the scratch folder")
    if not any(scratch.is_relative_to(h) for h in hidden):
        _check(libc.mount(str(scratch).encode(), str(scratch).encode(), None, MS_BIND, None), "bind scratch")
    os.close(keep)
    # a fresh /proc shows only this PID namespace; /proc/sys stays read-only
    _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
    _check(libc.mount(b"/proc/sys", b"/proc/sys", None, MS_BIND | MS_REC, None), "bind /proc/sys")
    for point, flags in _mounts():
        if point == str(scratch) or point.startswith("/dev/pts") or (
                point.startswith("/proc") and point != "/proc/sys"):
            continue  # the scratch folder stays writable; /proc is the fresh one mounted above
        ret = libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None)
        if ret != 0 and point in ("/", "/tmp", "/proc/sys") + tuple(str(h) for h in hidden):
            problems.append(f"could not make {point} read-only ({os.strerror(ctypes.get_errno())})")
    return problems


def set_limits(cpu_s: float, memory_mb: int, file_mb: int = 256, files: int = 1024) -> None:
    import resource

    def lim(which: int, soft: int, hard: int | None = None) -> None:
        try:
            resource.setrlimit(which, (soft, soft if hard is None else hard))
        except (ValueError, OSError):
            pass  # macOS refuses some limits (RLIMIT_AS); the wall-clock kill still holds

    lim(resource.RLIMIT_CPU, int(cpu_s) + 1, int(cpu_s) + 2)  # SIGXCPU, then SIGKILL a second later
    lim(resource.RLIMIT_AS, memory_mb * 2**20)
    lim(resource.RLIMIT_FSIZE, file_mb * 2**20)
    lim(resource.RLIMIT_NOFILE, files)
    lim(resource.RLIMIT_CORE, 0)


def drop_capabilities() -> None:
    """Drop every capability for good: no remounting, no ptrace, no raw I/O, no setuid gains."""
    libc = _libc()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
    _check(libc.capset(header, data), "capset")


def capabilities_left() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0
