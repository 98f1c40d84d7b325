"""Exceptions from the student's process, rebuilt in the grader as faithfully as is safe.

A test cell's ``except ValueError:`` must catch the student's ``ValueError``, so an error
reply becomes a real exception: a builtin class arrives as itself, a student's own class as a
class of the same name made here, derived from its nearest builtin base (``class
NegativeError(ValueError)`` is caught by ``except ValueError``). Only names and data cross —
never the student's class objects or code. Exceptions that would stop the grader itself
(``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``) arrive as ordinary exceptions of
the same name. Each one carries ``student_where``: the cells and lines it was raised from.

>>> e = from_reply({"mro": ["NegativeError", "ValueError", "Exception", "BaseException", "object"],
...                 "args": ["x < 0"], "where": ["cell 4 (f), line 3, in f"]})
>>> isinstance(e, ValueError), type(e).__name__, str(e), e.student_where
(True, 'NegativeError', 'x < 0', ['cell 4 (f), line 3, in f'])
>>> type(from_reply({"mro": ["SystemExit", "BaseException", "object"], "args": [0]})).__mro__[1].__name__
'StudentError'
"""

from __future__ import annotations

import builtins
from typing import Any


class StudentError(Exception):
    """The student's code raised; the message is theirs."""


class StudentGone(Exception):
    """The student's process timed out, died, or broke the protocol."""


_MADE: dict[tuple[str, type], type] = {}


def _builtin(name: str) -> type | None:
    cls = getattr(builtins, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


def _class(mro: list[str]) -> type:
    name = mro[0] if mro else "Exception"
    base = next((b for b in map(_builtin, mro) if b is not None), Exception)
    if not issubclass(base, Exception):  # never let a student's SystemExit end the grader
        base = StudentError
    if base.__name__ == name and base is not StudentError:
        return base
    if not name.isidentifier():
        name = "StudentException"
    key = (name, base)
    if key not in _MADE:
        bases = (base,) if issubclass(base, StudentError) else (base, StudentError)
        try:
            _MADE[key] = type(name, bases, {"__module__": "student"})
        except TypeError:  # a builtin base whose layout forbids a second base
            _MADE[key] = type(name, (base,), {"__module__": "student"})
    return _MADE[key]


def from_reply(reply: dict) -> BaseException:
    """The exception an error reply describes (``mro``, ``args`` or ``message``, ``where``)."""
    mro = [str(n) for n in (reply.get("mro") or [])][:64]
    cls = _class(mro)
    args: Any = reply.get("args")
    if not isinstance(args, list) or not all(isinstance(a, (str, int, float, bool, type(None))) for a in args):
        message = str(reply.get("message", reply.get("error", "")))[:2000]
        args = [message] if message else []
    try:
        exc = cls(*args)
    except Exception:  # a constructor that wants other arguments (UnicodeDecodeError...)
        exc = cls.__new__(cls)
        exc.args = tuple(args)
    exc.student_where = [str(w) for w in (reply.get("where") or [])][:50]
    return exc


def describe(exc: BaseException) -> str:
    """``ValueError: negative (cell 4 (f), line 3, in f)`` — an exception as feedback shows it."""
    where = getattr(exc, "student_where", None)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text + (f" ({where[-1]})" if where else "")
