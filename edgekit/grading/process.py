"""The grader's handle on one student process: fork it fenced, send it requests, kill it.

Forking matters twice. It is fast — the worker already imported numpy, onnxruntime and edgekit,
so a student process starts in milliseconds instead of a Jupyter kernel's second. And it must
happen *before* the grader reads tests or expected values: a child is a copy of its parent's
memory, so a process forked later could read the answers out of its own memory.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import cgroups, child, wire
from .child import SAFE_ENV, WORKER_ENV, _child, _zoo_cache, _zoo_models, clean_environ  # noqa: F401 (re-exported)
from .errors import StudentError, StudentGone, from_reply  # noqa: F401  (StudentError: re-exported)
from .handles import Remote, _apply_mutations, encode_arg  # noqa: F401  (encode_arg: re-exported)
from .lab import Limits

_LINUX = sys.platform.startswith("linux")


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
        self.own_group, self.idle = True, False

    def drain(self) -> StudentProcess:
        """Start collecting the process's output (call after the last fork: threads and fork don't mix)."""
        if self.out is None:
            self.out = _Output(self.out_fd, self.out_limit)
        return self

    @classmethod
    def start(cls, scratch: Path, hide: list[Path], limits: Limits, isolate: bool = True,
              need_cgroup: bool = False, probe: bool = False, group: cgroups.Group | None = None,
              idle: bool = False) -> StudentProcess:
        """Fork a fenced student process. ``need_cgroup``: refuse (CgroupError) rather than run uncapped;
        ``probe``: its "fenced" message says what it sees from inside (``edgekit doctor --grading``);
        ``group``: a cgroup shared with the submission's other processes (see :func:`submission_group`),
        which the caller removes; by default the process gets one of its own. ``idle``: a spare, which
        waits (forked, not yet fenced) until :meth:`fenced` is called: most are never needed."""
        own = group is None
        if own:
            group = submission_group(limits, isolate, need_cgroup)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        env = child.student_env()
        if isolate:
            child.prime()  # the allow-list, made once here rather than in each child
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the student's side; never returns
            os.close(req_w), os.close(resp_r), os.close(out_r)
            _child(scratch, hide, limits, isolate, group, req_r, resp_w, out_w, env, probe, idle)
        os.close(req_r), os.close(resp_w), os.close(out_w)
        os.set_blocking(req_w, False)  # with deadlines in wire.send/recv: never stuck on a pipe
        os.set_blocking(resp_r, False)
        proc = cls(pid, req_w, resp_r, out_r, limits.output_kb * 1024, group)
        proc.own_group, proc.idle = own, idle
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
        """Wait for the process's report on its fence (an idle spare is told to fence itself first)."""
        if self.idle:
            self.idle = False
            try:
                os.write(self.req, b"F")  # one byte into an empty pipe: never blocks
            except OSError:
                raise StudentGone(self.death()) from None
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
                # stopped by a limit of ours (time or CPU), not ended by the student's code
                raise CellStopped(reason, current, late or self.signal() == signal.SIGXCPU) from None
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

    def kill(self, wait: bool = True) -> None:
        """SIGKILL the process; in a PID namespace everything it started dies with it. ``wait=False``:
        do not wait for it to end (several processes killed first, then waited for, end side by side)."""
        if self.status is None:
            for kill in (os.kill, os.killpg):  # the group too, for the no-namespace fallback
                try:
                    kill(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if wait:
                self.wait()

    def wait(self) -> int:
        if self.status is None:
            _, status = os.waitpid(self.pid, 0)
            self.status = status
        return self.status

    def signal(self) -> int:
        """The signal that ended the process (its namespace's first process exits with 128 + it), or 0."""
        if self.status is None:
            return 0
        code = os.waitstatus_to_exitcode(self.status)
        return -code if code < 0 else (code - 128 if code > 128 else 0)

    def death(self) -> str:
        """Why the process ended, in words."""
        code = os.waitstatus_to_exitcode(self.wait())
        sig = self.signal()
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
        if self.group is not None and self.own_group:
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

