"""The grader's handle on one student process: fork it fenced, send it requests, kill it.

Forking matters twice. It is fast — the worker already imported numpy, onnxruntime and edgekit,
so a student process starts in milliseconds instead of a Jupyter kernel's second. And it must
happen *before* the grader reads tests or expected values: a child is a copy of its parent's
memory, so a process forked later could read the answers out of its own memory.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from . import cgroups, sandbox, seccomp_filter, wire
from .lab import Limits

_LINUX = sys.platform.startswith("linux")


from .errors import StudentError, StudentGone, from_reply  # noqa: F401  (StudentError: re-exported)


class CellStopped(StudentGone):
    """A top-level cell of the notebook hung or ended the process; ``index`` says which."""

    def __init__(self, message: str, index: int | None, timed_out: bool = False):
        super().__init__(message)
        self.index, self.timed_out = index, timed_out


class _Output:
    """Drain a pipe in a thread, keeping the first ``limit`` bytes: gigabytes of prints cost nothing."""

    def __init__(self, fd: int, limit: int):
        self.fd, self.limit, self.kept, self.total = fd, limit, bytearray(), 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
        os.close(self.fd)

    def text(self) -> tuple[str, int]:
        """The kept output, and how many bytes were dropped."""
        self.thread.join(timeout=1.0)
        return self.kept.decode("utf-8", "replace"), self.total - len(self.kept)


class StudentProcess:
    def __init__(self, pid: int, req: int, resp: int, out_fd: int, out_limit: int, group: cgroups.Group | None):
        self.pid, self.req, self.resp, self.group = pid, req, resp, group
        self.out_fd, self.out_limit, self.out = out_fd, out_limit, None
        self.fence: dict = {}
        self.status: int | None = None
        self.callbacks: dict[int, Any] = {}  # grader functions the student's code may call back
        self.probe_open = False
        self.replaying = False  # a test cell replays here: echo a call's prints, mirror its argument changes

    def drain(self) -> StudentProcess:
        """Start collecting the process's output (call after the last fork: threads and fork don't mix)."""
        if self.out is None:
            self.out = _Output(self.out_fd, self.out_limit)
        return self

    @classmethod
    def start(cls, scratch: Path, hide: list[Path], limits: Limits, isolate: bool = True,
              need_cgroup: bool = False, probe: bool = False, group: cgroups.Group | None = None) -> StudentProcess:
        """Fork a fenced student process. ``need_cgroup``: refuse (CgroupError) rather than run uncapped;
        ``probe``: its "fenced" message says what it sees from inside (``edgekit doctor --grading``);
        ``group``: a cgroup shared with the submission's other processes (see :func:`submission_group`),
        which the caller removes; by default the process gets one of its own."""
        own = group is None
        if own:
            group = submission_group(limits, isolate, need_cgroup)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if k in SAFE_ENV or k.startswith("LC_")}
        env["EDGEKIT_CACHE"] = str(_zoo_cache())  # built zoo models stay readable (read-only) for student code
        models = _zoo_models()
        if models:  # the zoo's manifest and committed models (a repository's models/ folder): read-only too
            env["EDGEKIT_MODELS_DIR"] = models
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the student's side; never returns
            os.close(req_w), os.close(resp_r), os.close(out_r)
            _child(scratch, hide, limits, isolate, group, req_r, resp_w, out_w, env, probe)
        os.close(req_r), os.close(resp_w), os.close(out_w)
        os.set_blocking(req_w, False)  # with deadlines in wire.send/recv: never stuck on a pipe
        os.set_blocking(resp_r, False)
        proc = cls(pid, req_w, resp_r, out_r, limits.output_kb * 1024, group)
        proc.own_group = own
        return proc

    # -- requests -------------------------------------------------------------------------------

    def _recv(self, deadline: float) -> dict:
        try:
            return wire.recv(self.resp, deadline)
        except TimeoutError:
            self.kill()
            raise StudentGone("no answer within the time limit") from None
        except EOFError:
            raise StudentGone(self.death()) from None
        except wire.WireError as exc:
            self.kill()
            raise StudentGone(f"the student process sent a malformed reply ({exc})") from None

    def _send(self, msg: dict, deadline: float) -> None:
        try:
            wire.send(self.req, msg, deadline)
        except TimeoutError:
            self.kill()
            raise StudentGone("the student process stopped reading requests") from None
        except OSError:  # BrokenPipeError: it is gone
            raise StudentGone(self.death()) from None

    def fenced(self, deadline: float) -> dict:
        self.fence = self._recv(deadline)
        return self.fence

    def run_program(self, cells: list[dict], deadline: float, cell_s: float, skip: set[int] = frozenset(),
                    probes: set[int] = frozenset(), on_probe=None) -> dict[int, dict]:
        """Run the assembled cells in the student's process; returns ``{index: outcome}`` of each cell run.

        Each cell must finish within ``cell_s`` (and the whole submission by ``deadline``); a cell
        that hangs or ends the process raises :class:`CellStopped` naming it. Before each cell in
        ``probes`` the process forks a probe and ``on_probe(index)`` talks to it.
        """
        self._send({"op": "program", "cells": cells, "skip": sorted(skip), "probes": sorted(probes)}, deadline)
        outcomes: dict[int, dict] = {}
        current, until = None, deadline
        while True:
            try:
                msg = self._recv(until)
            except StudentGone as exc:
                late = until < deadline and time.monotonic() >= until
                reason = f"it did not finish within {cell_s:g} s" if late else str(exc)
                raise CellStopped(reason, current, late) from None
            op = msg.get("op")
            if op == "cell":
                current, until = int(msg["index"]), min(deadline, time.monotonic() + cell_s)
            elif op == "done":
                outcomes[int(msg["index"])] = msg
                current, until = None, deadline
            elif op == "probe":
                index = int(msg["index"])
                self.probe_open = True
                try:
                    if on_probe is not None:
                        on_probe(index)
                finally:
                    if self.probe_open:
                        self._send({"op": "end"}, deadline)
                        while self._recv(deadline).get("op") != "probe-exit":
                            pass
                    self.probe_open = False
            elif op == "ready":
                return outcomes
            else:
                self.kill()
                raise StudentGone(f"the student process broke the protocol (sent {str(op)[:40]!r})")

    def request(self, msg: dict, deadline: float, args: tuple = ()) -> Any:
        """Ask the student's process for a value; its errors are raised here as rebuilt exceptions.

        While waiting, the student's code may call back a function of the grader's that was
        passed to it (a test's lambda); those calls are answered here, in the grader.
        """
        self._send(msg, deadline)
        while True:
            reply = self._recv(deadline)
            if reply.get("op") == "callback":
                self._send(self._answer_callback(reply), deadline)
                continue
            if reply.get("op") == "probe-exit":  # the student's code ended the probe mid-request
                self.probe_open = False
                code = reply.get("code")
                raise StudentGone(f"the student's code ended its process (exit code {code})")
            break
        if reply.get("stdout") and self.replaying:
            sys.stdout.write(str(reply["stdout"]))
        if reply.get("mutated") and self.replaying:
            _apply_mutations(args, reply["mutated"], self)
        if not reply.get("ok"):
            raise from_reply(reply)
        if "handle" in reply:
            return Remote(self, int(reply["handle"]), str(reply.get("type", "?")), deadline)
        return wire.decode(reply.get("value"), self._handle_hook(deadline))

    def _handle_hook(self, deadline: float):
        def hook(tag: str, v: dict, dec) -> Any:
            if tag == "$handle":
                return Remote(self, int(v["$handle"]), "object", deadline)
            raise wire.WireError(f"unknown tag {tag!r}")

        return hook

    def _answer_callback(self, msg: dict) -> dict:
        fn = self.callbacks.get(int(msg.get("id", -1)))
        if fn is None:
            return {"ok": False, "error": "no such callback", "mro": ["LookupError"]}
        try:
            hook = self._handle_hook(time.monotonic() + 60)
            value = fn(*wire.decode(msg.get("args", {"$tuple": []}), hook), **wire.decode(msg.get("kwargs", {"$dict": []}), hook))
            return {"ok": True, "value": encode_arg(value, self)}
        except Exception as exc:  # the grader's own function raised: the student's code sees it
            return {"ok": False, "message": str(exc)[:2000], "mro": [c.__name__ for c in type(exc).__mro__
                                                                    if c.__module__ == "builtins"] or ["Exception"]}

    # -- ending ---------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the process; in a PID namespace everything it started dies with it."""
        if self.status is None:
            for kill in (os.kill, os.killpg):  # the group too, for the no-namespace fallback
                try:
                    kill(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.wait()

    def wait(self) -> int:
        if self.status is None:
            _, status = os.waitpid(self.pid, 0)
            self.status = status
        return self.status

    def death(self) -> str:
        """Why the process ended, in words."""
        status = self.wait()
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else (code - 128 if code > 128 else 0)
        reasons = {signal.SIGXCPU: "it used up its CPU-time limit", signal.SIGKILL: "it was killed (SIGKILL)",
                   signal.SIGSEGV: "it crashed (segmentation fault)", signal.SIGXFSZ: "it wrote a file over the size limit",
                   signal.SIGABRT: "it aborted"}
        if sig:
            return f"the student process ended: {reasons.get(sig, f'signal {sig}')}"
        return f"the student process exited (code {code}) before answering"

    def close(self) -> tuple[str, int]:
        for fd in (self.req, self.resp):
            try:
                os.close(fd)
            except OSError:
                pass
        self.kill()
        if self.group is not None and getattr(self, "own_group", True):
            self.group.remove()
        return self.drain().out.text()


def submission_group(limits: Limits, isolate: bool, need_cgroup: bool) -> cgroups.Group | None:
    """A cgroup capping memory and processes (``limits.memory_mb``, ``limits.processes``), or None where
    none can be made; ``need_cgroup``: refuse (CgroupError) rather than run uncapped."""
    group = cgroups.create(limits.memory_mb, limits.processes) if isolate and _LINUX else None
    if need_cgroup and _LINUX and not (group and group.controllers.get("memory") and group.controllers.get("pids")):
        if group is not None:
            group.remove()
        raise cgroups.CgroupError("no cgroup caps this submission's memory and processes here; "
                                  "run as root, or pass --unsafe-no-cgroups (see `edgekit doctor --grading`)")
    return group


@functools.lru_cache(maxsize=1)
def _zoo_cache() -> Path:  # asked for each student process: once per judge is enough
    from ..zoo import cache_dir

    return cache_dir()


@functools.lru_cache(maxsize=1)
def _zoo_models() -> str:
    from ..zoo import ZooError, models_dir

    try:
        return str(models_dir().resolve())
    except ZooError:
        return ""


class Remote:
    """An object living in the student's process (a session, a class instance): usable, not data.

    Calls, attribute reads, ``len``, iteration and indexing are answered by the student's process
    and come back as data; comparisons and truth tests are deliberately not forwarded — an
    ``__eq__`` that always says yes must not decide a test.
    """

    def __init__(self, proc: StudentProcess, handle: int, type_name: str, deadline: float):
        self._proc, self._handle, self.type_name, self._deadline = proc, handle, type_name, deadline

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._proc.request({"op": "call", "handle": self._handle, "args": encode_arg(args, self._proc),
                                   "kwargs": encode_arg(kwargs, self._proc), "mutated": self._proc.replaying},
                                  self._deadline, args)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._proc.request({"op": "get", "handle": self._handle, "attr": attr}, self._deadline)

    def _op(self, fn: str, *args: Any) -> Any:
        return self._proc.request({"op": "op", "fn": fn, "handle": self._handle,
                                   "args": encode_arg(list(args), self._proc)}, self._deadline)

    def __len__(self) -> int:
        return int(self._op("len"))

    def __iter__(self):
        return iter(self._op("iter"))

    def __getitem__(self, key: Any) -> Any:
        return self._op("getitem", key)

    def __instancecheck__(self, obj: Any) -> bool:  # isinstance(p, Point): both the student's, asked there
        if not isinstance(obj, Remote):
            return False
        return bool(self._proc.request({"op": "op", "fn": "isinstance", "handle": obj._handle,
                                        "args": encode_arg([self], self._proc)}, self._deadline))

    def __repr__(self) -> str:
        return f"<{self.type_name} in the student's process>"


def encode_arg(v: Any, proc: StudentProcess | None = None) -> Any:
    """Arguments for the student's process: data, plus tags it resolves there — Obj/Ref/Remote, a
    library object by its import path (``np.float32``), a grader function as a callback."""
    from .cases import to_wire

    def extra(x: Any) -> Any:
        if isinstance(x, Remote):
            return {"$handle": x._handle}
        if isinstance(x, (list, tuple, dict, set, frozenset, str, bytes, int, float, complex)) or x is None:
            return None
        path = _import_path(x)
        if path:
            return {"$import": path}
        if callable(x) and proc is not None:
            key = len(proc.callbacks) + 1
            proc.callbacks[key] = x
            return {"$callback": key, "name": str(getattr(x, "__name__", "callback"))[:60]}
        return None

    return to_wire(v, extra)


def _import_path(x: Any) -> str | None:
    """``"numpy:float32"`` for a class or function a library defines, when importing it gives it back."""
    module, qual = getattr(x, "__module__", None), getattr(x, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qual, str) or module in ("__main__", "builtins") or "<" in qual:
        return None
    mod = sys.modules.get(module)
    try:
        found = mod
        for part in qual.split("."):
            found = getattr(found, part)
    except AttributeError:
        return None
    return f"{module}:{qual}" if mod is not None and found is x else None


def _apply_mutations(args: tuple, mutated: dict, proc: StudentProcess) -> None:
    """Make the caller's lists, dicts and arrays look as the student's code left its copies."""
    import numpy as np

    try:
        for key, enc in mutated.items():
            i = int(key)
            if i >= len(args):
                continue
            new, old = wire.decode(enc, proc._handle_hook(time.monotonic() + 60)), args[i]
            if isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and old.shape == new.shape:
                if old.flags.writeable:
                    old[...] = new
            elif isinstance(old, (list, bytearray)) and isinstance(new, (list, bytes, bytearray)):
                old[:] = new
            elif isinstance(old, dict) and isinstance(new, dict):
                old.clear()
                old.update(new)
    except (wire.WireError, ValueError, TypeError):
        pass


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
    extra = [env["EDGEKIT_CACHE"]] + ([env["EDGEKIT_MODELS_DIR"]] if "EDGEKIT_MODELS_DIR" in env else [])
    layers["problems"] = sandbox.build_root(scratch, [*hide, _DEMO], extra)
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


def _child(scratch: Path, hide: list[Path], limits: Limits, isolate: bool, group: cgroups.Group | None,
           req: int, resp: int, out: int, env: dict, probe: bool = False) -> None:
    code = 0
    try:
        _own_fds(req, resp, out)
        _unbuffered_output()
        os.setsid()  # own process group: the grader's terminal signals do not reach it
        sandbox.die_with_parent()
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
            from .fence_check import probe as look

            layers["probe"] = look()
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
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        os._exit(code)


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
