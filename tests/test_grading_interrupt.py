"""edgekit.grading.interrupt: a Ctrl-C that Python drops still stops a grading run.

Python drops a KeyboardInterrupt raised inside a finalizer ("Exception ignored in ..."), and a
grader would then grade on and exit 0. Here a finalizer receives the signal, exactly that way."""

from __future__ import annotations

import signal
import sys
from concurrent.futures import Future

import pytest

from edgekit.grading import interrupt
from edgekit.grading.batch import _completed


class _PressedInAFinalizer:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)  # its KeyboardInterrupt is raised here, and dropped


@pytest.fixture(autouse=True)
def ctrl_c_as_at_a_terminal():
    """Python's own Ctrl-C handler, as in a foreground process (pytest started in the background by a
    script inherits SIGINT ignored, and then nothing here would see a Ctrl-C at all)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture
def dropped(monkeypatch):
    """What Python dropped: the exceptions it reported as 'Exception ignored in ...'."""
    seen: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_type))
    return seen


def _drop_a_ctrl_c() -> None:
    _PressedInAFinalizer()


def _done(n: int) -> dict:
    futures = {}
    for i in range(n):
        f: Future = Future()
        f.set_result(0)
        futures[f] = i
    return futures


def test_python_drops_a_ctrl_c_raised_in_a_finalizer(dropped):
    """The premise: without the flag nothing would know (no exception reaches the caller)."""
    _drop_a_ctrl_c()
    assert dropped == [KeyboardInterrupt]


def test_a_dropped_ctrl_c_still_stops_the_batch(dropped):
    with interrupt.noted() as pressed:
        _drop_a_ctrl_c()
        assert pressed.is_set()
        with pytest.raises(KeyboardInterrupt):
            list(_completed(_done(3), pressed))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert dropped == [KeyboardInterrupt]


def test_without_ctrl_c_every_future_comes_back():
    futures = _done(4)
    with interrupt.noted() as pressed:
        assert sorted(futures[f] for f in _completed(futures, pressed)) == [0, 1, 2, 3]


def test_held_defers_ctrl_c_and_the_flag_keeps_it():
    with interrupt.noted() as pressed:
        with interrupt.held():  # dropped here (a second Ctrl-C while grades.csv is written)...
            signal.raise_signal(signal.SIGINT)
        assert pressed.is_set()  # ...but noted
        with pytest.raises(KeyboardInterrupt):
            with interrupt.held(reraise=True):
                signal.raise_signal(signal.SIGINT)


def test_an_ignored_ctrl_c_stays_ignored():
    """A grader started with `&` or nohup ignores Ctrl-C: noted() and held() leave that alone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupt.noted() as pressed, interrupt.held(reraise=True):
        signal.raise_signal(signal.SIGINT)
    assert not pressed.is_set() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_someone_elses_handler_is_left_alone():
    seen = []
    old = signal.signal(signal.SIGINT, lambda s, f: seen.append(s))
    try:
        with interrupt.noted() as pressed:
            signal.raise_signal(signal.SIGINT)
        assert seen == [signal.SIGINT] and not pressed.is_set()
    finally:
        signal.signal(signal.SIGINT, old)
