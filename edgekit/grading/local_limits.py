"""The grader's limits where a student checks: a call that does not return, output that floods.

The grader stops a call at ``call_s`` and keeps ``output_kb`` of output in a fenced process it can
kill. A student's ``check()`` runs in their own Jupyter kernel — on Linux, macOS or Windows —
where there is nothing to kill but the kernel itself. So the call is *interrupted* instead:

- where there is ``signal.setitimer`` (Linux, macOS) and the call runs on the main thread (as a
  Jupyter cell does), a ``SIGALRM`` timer raises :class:`TimeLimit` in it; this also ends a
  ``time.sleep`` or a blocking read;
- elsewhere (Windows, a worker thread) a watchdog thread raises :class:`TimeLimit` in the calling
  thread with ``PyThreadState_SetAsyncExc``: CPython checks for it between bytecodes, so a Python
  loop (``while True: pass``) stops, a single long C call only when it returns.

No fork and no second process: the answer's own objects (an ONNX Runtime session, a camera) stay
where the student made them. :class:`TimeLimit` derives from ``BaseException``, so a student's
``except Exception:`` does not swallow it.

>>> with time_limit(0.2):
...     try:
...         while True:
...             pass
...     except TimeLimit as stop:
...         print(stop)
did not return within 0.2 s
"""

from __future__ import annotations

import contextlib
import io
import threading


class TimeLimit(BaseException):
    """The time limit of a call or a cell ran out."""

    def __init__(self, seconds: float = 0.0):
        super().__init__(seconds)
        self.seconds = seconds

    def __str__(self) -> str:
        return f"did not return within {self.seconds:g} s"


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TimeLimit` in the block once ``seconds`` have passed (None or <= 0: no limit)."""
    import signal

    if not seconds or seconds <= 0:
        yield
        return
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def on_alarm(signum, frame):
            raise TimeLimit(seconds)

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        return
    with _watchdog(seconds):
        yield


@contextlib.contextmanager
def _watchdog(seconds: float):
    import ctypes

    ident, lock, state = threading.get_ident(), threading.Lock(), {"over": False, "fired": False}
    done = threading.Event()

    class Expired(TimeLimit):  # SetAsyncExc raises a class, not an instance: it carries its own seconds
        def __init__(self, *args):
            super().__init__(seconds)

    def fire():
        if not done.wait(seconds):
            with lock:
                if not state["over"]:
                    state["fired"] = True
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(Expired))

    watcher = threading.Thread(target=fire, name="edgekit-time-limit", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with lock:
            state["over"] = True
            if state["fired"]:  # fired as the block ended: withdraw what was not raised yet
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        done.set()
        watcher.join()


class Output(io.TextIOBase):
    """What a call printed: counted in full, its first ``keep`` lines kept (each cut at 200 characters)."""

    def __init__(self, keep: int = 5):
        self.keep, self.lines, self.chars, self.first = keep, 0, 0, []
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        self.chars += len(text)
        self.lines += text.count("\n")
        if len(self.first) < self.keep:
            parts = (self._partial + text).split("\n")
            self._partial = parts.pop()[:200]
            self.first.extend(p[:200] for p in parts[: self.keep - len(self.first)])
        return len(text)

    def summary(self, limit_kb: float | None = None, indent: str = "      ") -> str:
        """``printed 100,000 lines (1.1 MB, over the grader's 64 KB); first 5 shown:`` and them; "" if silent."""
        lines = self.lines + bool(self._partial)
        if not self.chars:
            return ""
        shown = (self.first + ([self._partial] if self._partial and len(self.first) < self.keep else []))[: self.keep]
        over = f", over the grader's {limit_kb:g} KB" if limit_kb and self.chars > limit_kb * 1024 else ""
        size = f"{self.chars / 2**20:.1f} MB" if self.chars >= 2**20 else f"{self.chars / 1024:.1f} KB"
        head = (f"printed {lines:,} line{'s' * (lines != 1)} ({size}{over})"
                + (f"; first {len(shown)} shown:" if len(shown) < lines else ":"))
        return "\n".join([head] + [f"{indent}| {line}" for line in shown])


@contextlib.contextmanager
def captured(keep: int = 5):
    """Send ``print`` and ``sys.stderr`` writes of the block to an :class:`Output` (yielded)."""
    out = Output(keep)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        yield out

