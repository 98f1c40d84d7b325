"""Run a trusted function on untrusted data in a fenced child process: the judge never does it itself.

Some verdicts need the grader to *use* something a student made: Lab 11 loads the student's ONNX
model and measures its accuracy. The function is the instructor's, but the data drives it: a model
with a ``Loop`` of 10^12 iterations hangs ONNX Runtime (which no Python signal interrupts), a
crafted file can crash or exhaust memory, and ONNX *external data* makes the runtime read files
named by the model, relative to the working directory. Done in the judge, that hangs the batch or
reads the answers. :func:`fenced_call` runs the function in a fresh forked child instead:

* a wall-clock deadline: at ``wall_s`` the child's whole process group gets SIGKILL;
* rlimits: CPU seconds (``cpu_s``), address space (``memory_mb``), no file writes (``write_mb``,
  0 by default), no core dumps;
* an empty temporary working directory, stdin and stdout on ``/dev/null``, every inherited file
  descriptor closed but stderr (the judge's pipes to the student's processes among them);
* on Linux, a network namespace of its own when the kernel allows it (as root, or with an
  unprivileged user namespace) and death with the judge (``PR_SET_PDEATHSIG``);
* the value comes back as JSON through a pipe (:mod:`edgekit.grading.wire`, never pickle), an
  exception as its type name and message.

What it does not do: hide files from the child (it can read what the judge can, see
``labs/README.md``). The function is trusted, so this matters only through what the *data* makes
it read: keep untrusted data from naming files (Lab 11 refuses external data before loading).

Platforms: Linux has every layer; macOS has fork and rlimits (no network namespace, and macOS does
not enforce ``RLIMIT_AS``); Windows has no fork, and :func:`fenced_call` raises
:class:`FencedCallError` there rather than run untrusted work unfenced (grade under WSL).

>>> fenced_call(pow, 2, 10, wall_s=10)
1024
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, Callable

from .._errors import FencedCallError
from . import wire

CLONE_NEWNET, CLONE_NEWUSER, PR_SET_PDEATHSIG = 0x40000000, 0x10000000, 1
_CPU_SIGNAL = getattr(signal, "SIGXCPU", None)  # POSIX only, like fork and ``resource``


def fenced_call(fn: Callable[..., Any], *args: Any, wall_s: float, cpu_s: float | None = None,
                memory_mb: int | None = 4096, write_mb: int = 0) -> Any:
    """``fn(*args)`` in a fenced child process (see the module docstring); returns its value.

    ``fn`` and ``args`` reach the child by ``fork`` (no pickling); the value must be data that
    :func:`edgekit.grading.wire.encode` accepts. ``cpu_s`` defaults to ``wall_s``; ``memory_mb``
    None leaves the address space unlimited. Raises :class:`FencedCallError` with the reason in words.
    """
    name = getattr(fn, "__qualname__", repr(fn))
    if not hasattr(os, "fork"):
        raise FencedCallError(f"cannot run {name} fenced: this platform has no os.fork (Windows); "
                              "grade on Linux, macOS or under WSL", "unsupported")
    limits = {"cpu_s": wall_s if cpu_s is None else cpu_s, "memory_mb": memory_mb, "write_mb": write_mb}
    workdir = tempfile.mkdtemp(prefix="edgekit-fenced-")
    r, w = os.pipe()
    sys.stdout.flush()  # buffered output would otherwise be written twice, once by the child
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(r)
        _child(fn, args, w, workdir, limits)
    os.close(w)
    try:
        os.setpgid(pid, pid)  # also done by the child: whichever runs first, the group exists
    except OSError:
        pass
    try:
        reply = wire.recv(r, time.monotonic() + wall_s)
    except TimeoutError:
        reply = "timeout"
    except (EOFError, wire.WireError):  # it died (or garbled its one message): its wait status says why
        reply = None
    finally:
        _kill_group(pid)  # stragglers too, after a normal return
        _, status = os.waitpid(pid, 0)  # SIGKILL was sent: this returns at once
        os.close(r)
        _remove(workdir)
    if not isinstance(reply, dict):
        raise _death(name, None if reply == "timeout" else status, wall_s, limits)
    if "value" in reply:
        try:
            return wire.decode(reply["value"])
        except wire.WireError as exc:
            raise FencedCallError(f"{name} returned something that is not data ({exc})", "reply") from None
    error = reply.get("raised")
    if not (isinstance(error, list) and len(error) == 2 and all(isinstance(e, str) for e in error)):
        raise FencedCallError(f"{name} sent a malformed reply", "reply")
    kind, message = error
    if kind == "MemoryError":
        raise FencedCallError(f"{name} ran out of memory: it needed more than memory_mb = {memory_mb} MiB "
                              "of address space", "memory", (kind, message))
    if kind == "WireError":
        raise FencedCallError(f"{name} returned something that is not data: {message}", "reply", (kind, message))
    raise FencedCallError(f"{name} raised {kind}: {message}", "raised", (kind, message))


def _death(name: str, status: int | None, wall_s: float, limits: dict) -> FencedCallError:
    """Why a child sent no reply, in words (``status`` None: it was still running at the deadline)."""
    if status is None:
        return FencedCallError(f"{name} did not finish within wall_s = {wall_s:g} s and was killed", "timeout")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        # the soft RLIMIT_CPU sends SIGXCPU, the hard one SIGKILL (which also means a kernel OOM kill)
        if sig == _CPU_SIGNAL or (sig == signal.SIGKILL and limits["cpu_s"] < wall_s):
            return FencedCallError(f"{name} used more than cpu_s = {limits['cpu_s']:g} s of CPU time and was killed",
                                   "cpu")
        try:
            what = signal.Signals(sig).name
        except ValueError:
            what = f"signal {sig}"
        return FencedCallError(f"{name} crashed ({what})", "crashed")
    return FencedCallError(f"{name} exited (code {os.waitstatus_to_exitcode(status)}) without a reply", "crashed")


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:  # already gone (or the group never formed)
            pass


def _remove(workdir: str) -> None:
    try:
        os.rmdir(workdir)  # the usual case: nothing was written (write_mb = 0)
    except OSError:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the child's side ---------------------------------------------------------------------------------

def _child(fn: Callable[..., Any], args: tuple, w: int, workdir: str, limits: dict) -> None:
    code = 1
    try:
        _fence(w, workdir, limits)
        try:
            reply = {"value": wire.encode(fn(*args))}
        except wire.WireError as exc:  # Unsendable included
            reply = {"raised": ["WireError", str(exc)]}
        except BaseException as exc:  # noqa: BLE001 - everything goes back as data, SystemExit included
            reply = {"raised": [type(exc).__name__, str(exc)[:2000]]}
        wire.send(w, reply)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent reports the missing reply
        pass
    finally:
        os._exit(code)


def _fence(w: int, workdir: str, limits: dict) -> None:
    import resource  # POSIX only: imported where fork exists

    os.setpgid(0, 0)  # a group of its own: the deadline kills everything it started
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a killed judge takes its audit along
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.closerange(3, w)  # the judge's pipes to student processes, its files: nothing to inherit
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    os.closerange(w + 1, soft if soft != resource.RLIM_INFINITY else 65536)
    os.chdir(workdir)  # relative paths (ONNX external data, say) resolve in an empty folder
    if libc is not None:  # a network namespace of its own, where the kernel lets us have one cheaply
        if os.geteuid() != 0 or libc.unshare(CLONE_NEWNET) != 0:
            libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)  # unprivileged; failure leaves the network as it is
    cpu = max(1, math.ceil(limits["cpu_s"]))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL at the hard
    if limits["memory_mb"] is not None:
        size = int(limits["memory_mb"]) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over write_mb fails with EFBIG, it does not kill
    fsize = int(limits["write_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def plain_model(data: Any, max_bytes: int):
    """An ONNX model parsed from a student's bytes, refused (ValueError) unless it is plain enough to run
    in a fenced child: at most ``max_bytes``, no external data (which would read other files), no
    control flow (``Loop``/``Scan``/``If``: unbounded work) and no custom operator domain."""
    import onnx

    if not isinstance(data, bytes) or not 0 < len(data) <= max_bytes:
        raise ValueError(f"expected the bytes of a model file of at most {max_bytes:,} bytes, got "
                         f"{type(data).__name__} of {len(data) if isinstance(data, bytes) else '?'} bytes")
    model = onnx.load_from_string(data)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ValueError("the model keeps its weights in external data files; save it as one file")
    odd = {n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx", "com.microsoft")
           or n.op_type in ("Loop", "Scan", "If")}
    if odd:
        raise ValueError(f"unexpected operators for this question: {sorted(odd)}")
    return model
