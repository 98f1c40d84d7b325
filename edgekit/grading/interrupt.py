"""Ctrl-C in a grading run: noted even where Python drops it, and held while files are written.

Ctrl-C raises ``KeyboardInterrupt`` wherever the main thread happens to be, and Python *drops* it
when that is a finalizer or a callback (it prints "Exception ignored in: ..." and goes on): a grader
would then grade on and exit 0 as if nobody had pressed anything. :func:`noted` installs a handler
that also sets a flag, which the batch checks every half second, so a dropped Ctrl-C still stops it.
A grader that ignores Ctrl-C (started in the background with ``&`` by a script, or under nohup: the
shell sets SIGINT to ignored) is left to ignore it, and so are its judges. :func:`held` defers Ctrl-C while a file
such as ``grades.csv`` is written, so a second Ctrl-C cannot cut it in half. Both are handlers, not
signal masks: the signal may be delivered to any thread, its handler always runs in the main one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pressed = threading.Event()


def _note(signum, frame) -> None:
    _pressed.set()
    raise KeyboardInterrupt


def _ours(handler) -> bool:
    """True where Ctrl-C is Python's default or already :func:`noted`'s: anything else (SIG_IGN under
    nohup, a caller's own handler) is left alone."""
    return threading.current_thread() is threading.main_thread() and handler in (signal.default_int_handler, _note)


@contextmanager
def noted() -> Iterator[threading.Event]:
    """Inside: Ctrl-C raises ``KeyboardInterrupt`` as usual *and* sets the event yielded, which stays
    set if the exception was dropped; check it with ``if pressed.is_set(): raise KeyboardInterrupt``."""
    previous = signal.getsignal(signal.SIGINT)
    if not _ours(previous):
        yield threading.Event()  # never set: Ctrl-C is someone else's here
        return
    _pressed.clear()
    signal.signal(signal.SIGINT, _note)
    try:
        yield _pressed
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def held(reraise: bool = False) -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then raise it if ``reraise`` (else it is dropped, though
    :func:`noted`'s flag still records it)."""
    previous = signal.getsignal(signal.SIGINT)
    if not _ours(previous):
        yield
        return
    caught: list[int] = []

    def hold(signum, frame) -> None:
        caught.append(signum)
        if previous is _note:
            _pressed.set()

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and reraise:
        raise KeyboardInterrupt
