"""The student's side of the fence, before any student code runs: environment, descriptors, fence.

:meth:`edgekit.grading.process.StudentProcess.start` forks; the child calls :func:`_child`, which
closes every descriptor it inherited, fences itself (``sandbox``, ``cgroups``, ``seccomp_filter``)
and only then starts the :class:`~edgekit.grading.student.Server` that runs the notebook.
"""

from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from . import cgroups, sandbox, seccomp_filter, wire
from .lab import Limits

_LINUX = sys.platform.startswith("linux")




SAFE_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONHASHSEED", "PYTHONIOENCODING", "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# what a grading worker may start with besides SAFE_ENV: where Python and native libraries are
WORKER_ENV = SAFE_ENV + ("HOME", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "EDGEKIT_CACHE",
                         "EDGEKIT_MODELS_DIR")


@contextmanager
def clean_environ() -> Iterator[None]:
    """While inside, ``os.environ`` holds only :data:`WORKER_ENV`: start the grading workers here.

    A process's ``/proc/<pid>/environ`` shows the environment it was *started* with, whatever it
    deletes later, and a forked student process is a copy of its worker. Workers started with
    the instructor's tokens would carry them into every student's memory.
    """
    saved = dict(os.environ)
    keep = {k: v for k, v in saved.items() if k in WORKER_ENV or k.startswith("LC_")}
    keep["EDGEKIT_CACHE"] = str(_zoo_cache())
    os.environ.clear()
    os.environ.update(keep)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _own_fds(req: int, resp: int, out: int) -> None:
    """stdin from /dev/null, stdout/stderr to the output pipe, every other inherited descriptor closed.

    A forked child inherits its parent's descriptors: a worker pool's queues, a judge's stdin
    carrying the secrets, open files. Student code must reach none of them.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    keep = {0, 1, 2, req, resp}
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:  # macOS: no /proc
        fds = list(range(3, min(os.sysconf("SC_OPEN_MAX"), 65536)))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _become_parent(*fds: int, init: bool = False, on_fork: Callable[[int], None] | None = None) -> None:
    """Fork; the parent waits and exits with the child's status (128 + signal), the child returns.

    ``init``: the parent is PID 1 of the namespace, so it also reaps orphans; the student's code
    runs in the child, where signals have their normal effect (PID 1 ignores default-fatal ones).
    ``on_fork(pid)`` runs in the parent first (it maps the child's user namespace from outside).
    """
    pid = os.fork()
    if pid == 0:
        sandbox.die_with_parent()
        return
    for fd in fds:
        os.close(fd)
    if on_fork is not None:
        on_fork(pid)
    while True:
        done, status = os.wait() if init else os.waitpid(pid, 0)
        if done == pid:
            os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def _fence(scratch: Path, hide: list[Path], limits: Limits, level: str, env: dict,
           req: int, resp: int) -> dict:
    """Namespaces are entered; build the root, become the student, drop everything. Returns the layers."""
    import functools

    layers: dict = {}
    uid = sandbox.student_uid(scratch)
    if level == "root":  # the student's files in scratch are its own; nothing else on the host is
        os.chown(scratch, uid, uid)
        sync_up, sync_down = os.pipe(), os.pipe()
        proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
        _become_parent(req, resp, sync_up[1], sync_down[0], on_fork=functools.partial(
            sandbox.map_user, host_id=uid, proc_fd=proc, sync_r=sync_up[0], sync_w=sync_down[1]))
        os.close(sync_up[0]), os.close(sync_down[1]), os.close(proc)
    else:
        _become_parent(req, resp)  # the first process in the new PID namespace must be a child
    layers["problems"] = sandbox.build_root(scratch, [*hide, _DEMO], _extra(env))
    layers["root"] = "pivot_root to an allow-list"
    if level == "root":
        sandbox.enter_user_namespace(sync_up[1], sync_down[0])
        os.close(sync_up[1]), os.close(sync_down[0])
        layers["user"] = f"uid {sandbox.STUDENT_ID} inside, {uid} outside"
    else:
        layers["user"] = f"the grading user ({os.getuid()} inside its own user namespace)"
    sandbox.set_limits(limits.cpu_s, limits.memory_mb)
    sandbox.drop_capabilities()
    sandbox.die_with_parent()  # again: the kernel clears it whenever the credentials change (uid, capabilities)
    layers["seccomp"] = seccomp_filter.install() or "on"
    _become_parent(req, resp, init=True)
    sandbox.set_dumpable()  # its own /proc files readable by itself again (a uid change hid them); PID 1 stays hidden
    return layers


_DEMO = Path(__file__).parent / "demo"  # the demo lab's solutions ship inside edgekit


def _extra(env: dict) -> list[str]:
    """Folders bound read-only besides the allow-list: the zoo's cache and models."""
    return [env["EDGEKIT_CACHE"]] + ([env["EDGEKIT_MODELS_DIR"]] if env.get("EDGEKIT_MODELS_DIR") else [])


def student_env() -> dict:
    """The environment a student process starts with: the safe variables and the zoo's folders."""
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV or k.startswith("LC_")}
    env["EDGEKIT_CACHE"] = str(_zoo_cache())  # built zoo models stay readable (read-only) for student code
    models = _zoo_models()
    if models:  # the zoo's manifest and committed models (a repository's models/ folder): read-only too
        env["EDGEKIT_MODELS_DIR"] = models
    return env


def prime() -> None:
    """Make the fence's allow-list here, before forking: each student process forked later finds it
    made (:func:`edgekit.grading.sandbox.allowed`) instead of walking ``sys.modules`` itself."""
    if _LINUX:
        sandbox.allowed(_extra(student_env()))


def _child(scratch: Path, hide: list[Path], limits: Limits, isolate: bool, group: cgroups.Group | None,
           req: int, resp: int, out: int, env: dict, probe: bool = False, idle: bool = False) -> None:
    code = 0
    try:
        _own_fds(req, resp, out)
        _unbuffered_output()
        os.setsid()  # own process group: the grader's terminal signals do not reach it
        sandbox.die_with_parent()
        if idle and os.read(req, 1) != b"F":  # a spare: fence only when needed (StudentProcess.fenced)
            wire.leave(0)  # the grader closed the pipe: not needed after all
        if _LINUX:
            sandbox.wipe_environ()  # before any fork below: every process of the student's is a copy
        in_group = group.join() if group is not None else False
        level = sandbox.unshare() if isolate else ""
        scratch_fs = _scratch_fs(scratch) if _LINUX else ""
        layers = _fence(scratch, hide, limits, level, env, req, resp) if level else {}
        os.chdir(scratch)
        sys.path.insert(0, str(scratch))  # as in Jupyter: the lab's support modules import from the notebook's folder
        os.environ.clear()  # the grader's environment may hold tokens; keep only what code needs
        os.environ.update(env, HOME=str(scratch), TMPDIR=str(scratch), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
        if not level:
            sandbox.set_limits(limits.cpu_s, limits.memory_mb)
        st = sandbox.status() if _LINUX else {}
        caps = int(st.get("CapEff", "0"), 16)
        cg = {"version": group.version, **group.controllers} if group is not None and in_group else {}
        if probe:
            layers["probe"] = fence_report()
        wire.send(resp, {"op": "fenced", "level": level or "rlimits-only", "pids_cgroup": bool(cg.get("pids")),
                         "cgroup": cg, "scratch": scratch_fs, "problems": layers.pop("problems", []),
                         "capabilities": caps, "no_new_privs": st.get("NoNewPrivs") == "1",
                         "seccomp_mode": st.get("Seccomp", ""), **layers})
        from .student import Server

        Server(req, resp).serve()
    except BaseException:  # report, then leave: the grader sees the pipe close
        import traceback

        try:
            os.write(2, traceback.format_exc()[-4000:].encode())
        except OSError:
            pass
        code = 70
    finally:
        wire.leave(code)


def _unbuffered_output() -> None:
    """Every print reaches the output pipe at once: the process is killed, never exits, at the end."""
    import io

    for name, fd in (("stdout", 1), ("stderr", 2)):
        setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                            errors="backslashreplace", write_through=True))


def _scratch_fs(scratch: Path) -> str:
    """``"tmpfs 512 MiB"`` when the judge gave scratch a capped tmpfs, else ``"host disk"``."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == str(scratch) and fields[2] == "tmpfs":
            st = os.statvfs(scratch)
            return f"tmpfs {st.f_blocks * st.f_frsize // 2**20} MiB"
    return "host disk"


@functools.lru_cache(maxsize=1)
def _zoo_cache() -> Path:  # asked for each student process: once per judge is enough
    from .._paths import cache_root

    return cache_root()


@functools.lru_cache(maxsize=1)
def _zoo_models() -> str:
    from .._errors import ZooError
    from .._paths import models_dir

    try:
        return str(models_dir().resolve())
    except ZooError:
        return ""


def fence_report() -> dict:
    """What a student process sees from inside (run there, after the fence is up)."""
    import ctypes
    import errno

    out: dict = {"uid": os.getuid(), "root_entries": sorted(os.listdir("/"))}
    out["dev"] = sorted(os.listdir("/dev")) if os.path.isdir("/dev") else []
    try:
        out["environ_bytes"] = len(Path("/proc/self/environ").read_bytes().strip(b"\0"))
    except OSError as exc:
        out["environ_bytes"] = f"unreadable ({exc.strerror})"
    col = 0 if seccomp_filter.machine() == "x86_64" else 1
    nr = seccomp_filter.DENIED["keyctl"][col]
    libc = ctypes.CDLL(None, use_errno=True)
    ret = libc.syscall(nr, 0, -3, 0) if nr is not None else -1  # KEYCTL_GET_KEYRING_ID of the session keyring
    out["keyctl"] = "allowed" if ret >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    return out
