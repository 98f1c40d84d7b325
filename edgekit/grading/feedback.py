"""What a case's outcome says to the student: one wording for ``check()``, ``edgekit check`` and the grader.

A message must let the student reproduce the failure in a cell: the call with its arguments
(arrays with their dtype), the value at the first index that differs (and the input's value
there, when the input is too big to show), the lines of *their* cells the error came from, and
the plain reason when there is one — a missing ``return``, a name never defined, a function of an
earlier question that raised.

>>> from edgekit.grading.cases import call, close
>>> compared(call("scale", [1.0]), close(), None, [2.0])
'scale([1.0]) returned None — did you forget `return`?'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .targets import Call, _short

_MISSING = re.compile(r"name '([^']+)' is not defined")
_FRAME_FN = re.compile(r", in ([A-Za-z_][A-Za-z0-9_]*)$")


def missing_name(name: str) -> NameError:
    """The error for a name the notebook never defined, as the grader's student process words it."""
    return NameError(f"name {name!r} is not defined — did the cell that defines it run without errors?")


def owners(cases: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """``{function name: first question that calls it}`` from ``(question, target)`` pairs."""
    out: dict[str, str] = {}
    for question, target in cases:
        if isinstance(target, Call):
            out.setdefault(target.name, question)
    return out


def cell_frames(exc: BaseException, label_of: Callable[[str], str | None] | None = None) -> list[str]:
    """The frames of ``exc`` that lie in notebook cells, innermost last: ``Cell In[7], line 3, in letterbox``.

    ``student_where`` (an error rebuilt by the grader) wins; else ``label_of(filename)`` names a
    cell (:meth:`Kernel.filename_label`), or IPython's own map of cell files to ``In[n]`` (Jupyter).
    """
    where = getattr(exc, "student_where", None)
    if where is not None:
        return list(where)
    import traceback

    label_of = label_of or _ipython_label
    out = []
    for frame in traceback.extract_tb(exc.__traceback__):
        label = label_of(frame.filename or "")
        if label:
            out.append(f"{label}, line {frame.lineno}" + ("" if frame.name == "<module>" else f", in {frame.name}"))
    return out


def _ipython_label(filename: str) -> str | None:
    m = re.match(r"<ipython-input-(\d+)-", filename)
    if m:
        return f"Cell In[{m.group(1)}]"
    shell = sys_ipython()
    count = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(filename) if shell else None
    return f"Cell In[{count}]" if count is not None else None


def sys_ipython():
    """The running IPython shell, if this is one (a Jupyter kernel), without importing IPython."""
    import sys

    mod = sys.modules.get("IPython")
    get = getattr(mod, "get_ipython", None)
    return get() if get else None


def raised(describe: str, exc: BaseException, question: str, owner: dict[str, str] | None = None,
           label_of: Callable[[str], str | None] | None = None, target: str | None = None) -> str:
    """The message for a case whose call raised ``exc``."""
    where = cell_frames(exc, label_of)
    text = str(exc)
    m = _MISSING.fullmatch(text.split(" — ")[0]) if isinstance(exc, NameError) else None
    if m and not where and m.group(1) == target:
        return f"{target} is not defined in your notebook — did the cell that defines it run without errors?"
    error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    message = f"{describe} raised {error}"
    for frame in reversed(where):  # the innermost function of another question is the one to fix first
        fn = _FRAME_FN.search(frame)
        if fn and owner and owner.get(fn.group(1), question) != question and fn.group(1) != target:
            message = (f"{question} calls your {fn.group(1)} from {owner[fn.group(1)]}, which raised {error}; "
                       f"fix {owner[fn.group(1)]} first")
            break
    if where:
        message += "\n" + "\n".join(f"        {w}" for w in where)
    return message


def compared(target: Any, compare: Callable[[Any, Any], str | None], got: Any, want: Any) -> str | None:
    """None when ``got`` passes ``compare`` against ``want``, else the message for the case."""
    describe = target.describe() if hasattr(target, "describe") else str(target)
    if got is None and want is not None:
        return f"{describe} returned None — did you forget `return`?"
    try:
        msg = compare(got, want)
    except Exception as exc:  # noqa: BLE001 - a comparison that cannot handle the answer is a failure
        msg = f"could not compare the answer ({type(exc).__name__}: {exc})"
    if msg is None:
        return None
    index = getattr(msg, "index", None)
    if index is not None and isinstance(target, Call):  # the input where it differs, when it is too big to show
        shape = np.shape(got)
        named = [(f"argument {i + 1}", a) for i, a in enumerate(target.args)] + list(target.kwargs.items())
        for name, arg in named:
            if isinstance(arg, np.ndarray) and arg.size > 6 and arg.shape == shape:
                try:  # an array index; a mismatch inside a container (dict key, list item) has another kind
                    there = arg[index]
                except (IndexError, TypeError, ValueError):
                    break
                msg = f"{msg}; there the input ({name}) is {_short(there)}"
                break
    return f"{describe}: {msg}"
