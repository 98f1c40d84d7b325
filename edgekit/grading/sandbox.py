"""Fence a student's process in, on Linux: an allow-list root, an unprivileged user, limits.

Called in a freshly forked child, before any student code exists in it (see
:func:`edgekit.grading.child._child` for the order):

1. a new session and "die with the parent", so a killed grader leaves nothing behind;
2. a cgroup per student process (:mod:`.cgroups`): memory of the whole tree, processes, CPU
   share, and on v1 the devices controller;
3. new mount, PID, network, IPC and UTS namespaces: the student's tree dies with its first
   process, sees no other process and has no network;
4. a new root (:func:`build_root`): an empty tmpfs holding read-only binds of an **allow-list**
   (``/usr`` and the ``/lib``s, the Python installation, the packages the worker imported, the
   zoo's models folder and cache), the scratch folder read-write, a fresh ``/proc``, a ``/dev`` with null, zero,
   full, random and urandom only, an ``/etc`` with a passwd line. ``pivot_root`` into it: earlier
   ``--out`` folders, other submissions, copies of the course, ``$HOME``, ``/run``, the host's
   ``/tmp`` and its sockets do not exist inside;
5. a user namespace mapping the student to uid 1000 inside and, outside, to a uid of its own
   that owns nothing on the host (:func:`student_uid`), so a root-only file is out of reach
   even where visible;
6. rlimits, every capability dropped with ``no_new_privs``, then a seccomp filter
   (:mod:`.seccomp_filter`): no keyring, ptrace, mounts, namespaces, raw I/O, bpf, io_uring.

As root the grader does 3-4 as root and maps the user in 5 from outside. Without root it needs
unprivileged user namespaces: 3 happens inside a user namespace that maps the student to the
grading user (5 is then that mapping). Elsewhere (macOS, a kernel that refuses namespaces) only
1, 2 and the rlimits apply; the record says which level was reached. Python-level tricks (audit
hooks, restricted builtins) are deliberately absent: whatever runs in the student's process can
be undone by the student, which is why verdicts are made in another process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import zlib
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x04000000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE, MS_RELATIME = (
    1024, 2048, 4096, 16384, 1 << 18, 1 << 19, 1 << 21)
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "armv7l": 218, "armv6l": 218}  # glibc has no wrapper
CGROUP_PIDS = Path("/sys/fs/cgroup/pids")  # where a killed grader's v1 pids groups lie (batch cleans them)
DEVICES = ("null", "zero", "full", "random", "urandom")
STUDENT_ID = 1000  # the student's uid and gid inside its user namespace
UID_BASE = 1_900_000_000  # outside: a uid per submission above every real user and subuid range
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# statvfs flags -> mount flags: a bind remount must keep the locks of its source (nodev, noexec...)
_ST_TO_MS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME,
             4096: MS_RELATIME}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None, what: str) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc().mount(enc(src), enc(target), enc(fstype), flags, enc(data)), what)


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def student_uid(scratch: Path) -> int:
    """The host uid (and gid) the student runs as: one per submission (its scratch folder)."""
    return UID_BASE + zlib.crc32(str(scratch).encode()) % (1 << 24)


def private_scratch(scratch: Path, disk_mb: int) -> str:
    """In the judge, before it forks: its own mount namespace with a ``disk_mb`` tmpfs on ``scratch``.

    The judge copies the lab's public files into scratch *after* forking the students (it reads
    the lab only then), so the tmpfs must be mounted before the fork, by the judge: the children
    inherit it and bind it into their root. It lives in the judge's namespace only, so it is
    freed when the judge exits, however it exits. Returns "" or what went wrong.
    """
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "scratch on the host disk: a size-capped tmpfs needs root"
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        return f"scratch on the host disk: unshare: {os.strerror(ctypes.get_errno())}"
    try:  # slave: the host's mounts still reach us; ours never reach the host
        _mount(None, "/", None, MS_REC | MS_SLAVE, None, "make mounts private")
        _mount("tmpfs", str(scratch), "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk_mb}m,mode=0755", "scratch tmpfs")
    except OSError as exc:
        return f"scratch on the host disk: {exc}"
    return ""


def release_scratch(scratch: Path) -> None:
    """Undo :func:`private_scratch` (a judge that lives on, as on a dask worker, then removes the folder)."""
    if sys.platform.startswith("linux") and os.path.ismount(scratch):
        _libc().umount2(str(scratch).encode(), MNT_DETACH)


def unshare() -> str:
    """New mount/PID/net/IPC/UTS namespaces; ``"root"``, ``"userns"`` or ``""`` (not possible)."""
    if not sys.platform.startswith("linux"):
        return ""
    libc = _libc()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if os.geteuid() == 0 and libc.unshare(flags) == 0:
        return "root"
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(flags | CLONE_NEWUSER) != 0:
        return ""
    try:  # the grading user, as root of a namespace of its own: it may mount, but only there
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    except OSError:
        return ""
    return "userns"


def _site_dirs() -> list[str]:
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    return sorted(prefixes) + [p for p in map(os.path.abspath, filter(None, sys.path)) if os.path.isdir(p) and (
        os.path.basename(p) in ("site-packages", "dist-packages")
        or any(os.path.realpath(p).startswith(q + os.sep) for q in prefixes))]


_ALLOWED: dict[tuple, list[str]] = {}  # the last allow-list, by what it was made from (see allowed)


def allowed(extra: list[str] = ()) -> list[str]:
    """What the student may see, read-only: the system, the Python installation, imported packages.

    Packages from other places on ``sys.path`` (an editable install's repository, the current
    folder) are bound one package folder at a time: the folder holding them may hold the course.

    Kept while ``extra`` (and which of it exists), ``sys.path``, the working folder and the number
    of imported modules stay the same: made once in a grading worker (:func:`edgekit.grading.child.prime`),
    it is found made in every process forked from it. Walking ``sys.modules`` in a fresh fork is the
    dearest step of the fence (~15 ms): touching each module object copies the memory page it lies on.
    """
    key = (tuple((p, os.path.isdir(p)) for p in extra), tuple(sys.path), os.getcwd(), len(sys.modules))
    if key not in _ALLOWED:
        _ALLOWED.clear()
        _ALLOWED[key] = _allowed(extra)
    return list(_ALLOWED[key])


def _allowed(extra: list[str]) -> list[str]:
    paths = [p for p in SYSTEM if os.path.lexists(p)] + _site_dirs()
    sites = tuple(os.path.realpath(p) + os.sep for p in paths)
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f or "." in getattr(mod, "__name__", ".") or not f.endswith("__init__.py"):
            continue  # top-level packages only; single-file modules outside site dirs are scripts, tests
        pkg = os.path.dirname(os.path.abspath(f))
        if not os.path.realpath(pkg).startswith(sites):
            paths.append(pkg)
    paths += [os.path.abspath(p) for p in extra if os.path.isdir(p)]
    out: list[str] = []
    for p in sorted(set(paths) - {"/"}, key=lambda p: (p.count(os.sep), p)):  # never the host's whole root
        if not any(p.startswith(q + os.sep) and os.path.realpath(p).startswith(os.path.realpath(q) + os.sep)
                   for q in out):  # already inside a folder bound whole
            out.append(p)
    return out


def _bind(src_fd: int, target: str, flags: int, is_dir: bool = True) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "wb").close()
    _mount(f"/proc/self/fd/{src_fd}", target, None, MS_BIND, None, f"bind {target}")
    st = os.statvfs(f"/proc/self/fd/{src_fd}")
    keep = sum(ms for st_flag, ms in _ST_TO_MS.items() if st.f_flag & st_flag)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | keep | flags, None, f"lock {target}")


def build_root(scratch: Path, hide: list[Path], extra: list[str] = (), new: str = "/tmp") -> list[str]:
    """Make a tmpfs at ``new`` (in this mount namespace only) the root: the allow-list, nothing else.

    Must run in a fresh mount and PID namespace. Returns problems that did not stop the fence.
    """
    problems: list[str] = []
    scratch = Path(os.path.abspath(scratch))
    hidden = sorted({os.path.abspath(h) for h in hide})
    binds = [p for p in allowed(extra) if not any(p == h or p.startswith(h + os.sep) for h in hidden)]
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make mounts private")
    # every source is opened before the new root covers /tmp, where some of them may lie
    fds = {p: os.open(p, os.O_PATH) for p in binds if os.path.exists(p)}
    facts = {p: (os.path.realpath(p), os.path.isdir(p), os.path.islink(p)) for p in binds}  # before /tmp is covered
    fds[str(scratch)] = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    devs = {d: os.open(f"/dev/{d}", os.O_PATH) for d in DEVICES if os.path.exists(f"/dev/{d}")}
    try:
        _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755", "the new root")
        ro = MS_RDONLY | MS_NOSUID | MS_NODEV
        for p in binds:
            real, is_dir, is_link = facts[p]
            if is_link and p in SYSTEM:  # merged /usr: /bin -> usr/bin
                os.symlink(os.readlink(p), new + p)
            elif p in fds:
                _bind(fds[p], new + p, ro, is_dir)
                if real != p and not os.path.exists(new + real):  # reached by either name
                    _bind(fds[p], new + real, ro, is_dir)
        for h in hidden:  # a hidden folder inside an allowed one (the demo lab inside edgekit)
            if os.path.isdir(new + h) and any(h.startswith(p + os.sep) for p in binds):
                _mount("tmpfs", new + h, "tmpfs", ro, "size=4k,mode=0755", f"hide {h}")
        _bind(fds[str(scratch)], new + str(scratch), MS_NOSUID | MS_NODEV)
        _minimal_dev(new, devs, problems)
        os.makedirs(new + "/proc")
        _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None, "mount /proc")
        _mount(new + "/proc/sys", new + "/proc/sys", None, MS_BIND | MS_REC, None, "bind /proc/sys")
        _mount(None, new + "/proc/sys", None, MS_REMOUNT | MS_BIND | ro | MS_NOEXEC, None, "/proc/sys read-only")
        _etc(new, scratch)
    finally:
        for fd in [*fds.values(), *devs.values()]:
            os.close(fd)
    _pivot(new)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None, "root read-only")
    return problems


def _minimal_dev(new: str, devs: dict[str, int], problems: list[str]) -> None:
    os.makedirs(new + "/dev")
    _mount("tmpfs", new + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755", "/dev")
    for name, fd in devs.items():  # the host's nodes, bound: mknod would need a device-enabled mount
        _bind(fd, f"{new}/dev/{name}", MS_NOSUID | MS_NOEXEC, is_dir=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    # no /dev/shm: nothing is writable but scratch (multiprocessing's semaphores are not available)
    _mount(None, new + "/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, None, "/dev ro")
    missing = [d for d in DEVICES if d not in devs]
    if missing:
        problems.append(f"no /dev/{', /dev/'.join(missing)} on the host")


def _etc(new: str, scratch: Path) -> None:
    os.makedirs(new + "/etc")
    Path(new + "/etc/passwd").write_text(f"student:x:{STUDENT_ID}:{STUDENT_ID}:student:{scratch}:/bin/sh\n")
    Path(new + "/etc/group").write_text(f"student:x:{STUDENT_ID}:\n")
    Path(new + "/etc/hostname").write_text("edgekit-student\n")
    if os.path.islink("/etc/localtime"):
        os.symlink(os.readlink("/etc/localtime"), new + "/etc/localtime")
    # the dynamic linker finds /usr/lib/<arch> libraries through ld.so.cache; fontconfig (matplotlib) wants fonts
    for path in ("/etc/ld.so.cache", "/etc/fonts"):
        if os.path.exists(path):
            fd = os.open(path, os.O_PATH)
            try:
                _bind(fd, new + path, MS_RDONLY | MS_NOSUID | MS_NODEV, is_dir=os.path.isdir(path))
            finally:
                os.close(fd)


def _pivot(new: str) -> None:
    """``pivot_root`` (not chroot: a chroot is escapable, and a chrooted process may not create a user namespace)."""
    from .seccomp_filter import machine

    if machine() not in SYS_PIVOT_ROOT:
        raise OSError(f"pivot_root: no syscall number known for {machine()} (add it to sandbox.SYS_PIVOT_ROOT)")
    os.chdir(new)
    libc = _libc()
    _check(libc.syscall(SYS_PIVOT_ROOT[machine()], b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach the old root")  # the old root was stacked under "."
    os.chdir("/")


def enter_user_namespace(sync_w: int, sync_r: int) -> None:
    """Become uid/gid 1000 of a new user namespace; the parent, still root outside, writes the maps."""
    os.setgroups([])  # root's supplementary groups would still open group-readable files
    _check(_libc().unshare(CLONE_NEWUSER), "user namespace")
    os.write(sync_w, b"u")
    if os.read(sync_r, 1) != b"m":
        raise OSError("the parent did not map the student's user")
    os.setresgid(STUDENT_ID, STUDENT_ID, STUDENT_ID)
    os.setresuid(STUDENT_ID, STUDENT_ID, STUDENT_ID)


def map_user(pid: int, host_id: int, proc_fd: int, sync_r: int, sync_w: int) -> None:
    """The parent's half of :func:`enter_user_namespace`: map 1000 inside to ``host_id`` outside.

    ``proc_fd``: the host's /proc, opened before the fork — the child's ``pivot_root`` moves the
    root of every process of the mount namespace, this parent's too.
    """
    if os.read(sync_r, 1) != b"u":
        return  # the child died before asking
    try:
        for name in ("uid_map", "gid_map"):
            fd = os.open(f"{pid}/{name}", os.O_WRONLY, dir_fd=proc_fd)
            try:
                os.write(fd, f"{STUDENT_ID} {host_id} 1".encode())
            finally:
                os.close(fd)
        os.write(sync_w, b"m")
    except OSError as exc:
        os.write(2, f"could not map the student's user: {exc}\n".encode())
        os.write(sync_w, b"x")


def set_dumpable() -> None:
    _libc().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def wipe_environ() -> None:
    """Zero the environment block the process was started with: ``/proc/self/environ`` shows it."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51 of stat(5))
    except (OSError, IndexError, ValueError):
        return
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)  # it still reads as that many zeros: nothing to learn


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


def status() -> dict:
    """What the kernel says about this process: capabilities, no_new_privs, seccomp mode, uids."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp", "Uid"):
            out[key] = value.split()[0] if key == "Uid" else value.strip()
    return out


def capabilities_left() -> int:
    return int(status().get("CapEff", "0"), 16)
