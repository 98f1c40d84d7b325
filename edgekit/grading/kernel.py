"""Run notebook cells as Jupyter would, in this process: IPython's ``InteractiveShell``, no kernel.

A Jupyter kernel is IPython behind ZMQ; starting one costs about a second per notebook. The
shell itself runs in-process in milliseconds and gives the student's code the same semantics:
line and cell magics (``%timeit``, ``%%time``), ``display``, ``_``, ``get_ipython()``, one
namespace for every cell, and an error that stops only its own cell (``sys.exit()`` and a
top-level ``KeyboardInterrupt`` included). The grader's student process, the reference
solution and ``edgekit check`` all run notebooks through this one class.

>>> k = Kernel()
>>> [r.ok for r in (k.run("a", "x = 2\\n%time z = x + 1"), k.run("b", "y = x * 21"))]
CPU times: ...
[True, True]
>>> k.ns["y"]
42
>>> r = k.run("cell 3", "def f(v):\\n    raise ValueError('negative')\\nf(-1)")
Traceback (most recent call last):
  cell 3, line 3
  cell 3, line 2, in f
ValueError: negative
>>> r.ename, r.evalue, r.where
('ValueError', 'negative', ['cell 3, line 3', 'cell 3, line 2, in f'])
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

_INPUT = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")


@dataclass
class CellResult:
    """What one cell did: ``ok``, or the exception's class, message and where it was raised."""

    label: str
    ok: bool = True
    ename: str = ""
    evalue: str = ""
    where: list[str] = field(default_factory=list)  # "cell 5 (q1), line 3, in f", innermost last
    mro: list[str] = field(default_factory=list)  # the exception's classes, most derived first

    @property
    def error(self) -> str | None:
        """One line for feedback, or None: ``ValueError: negative (cell 3, line 2, in f)``."""
        if self.ok:
            return None
        at = f" ({self.where[-1]})" if self.where else ""
        return f"{self.ename}: {self.evalue}{at}" if self.evalue else f"{self.ename}{at}"

    def to_dict(self) -> dict:
        return {"schema": "edgekit.grading.cell/1", **asdict(self)}

    def __str__(self) -> str:
        return f"{self.label}: {self.error or 'ok'}"


def _shell_class():
    from .._extras import require

    require("IPython", extra="lab", purpose="running notebooks as Jupyter does")
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell


class Kernel:
    """One notebook's namespace and an IPython shell running cells in it.

    ``execution`` sets ``NBGRADER_EXECUTION`` as nbgrader does (``"autograde"`` when grading,
    ``"validate"`` when a student checks); None leaves the environment alone.
    """

    def __init__(self, ns: dict[str, Any] | None = None, execution: str | None = None, tracebacks: bool = True):
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False  # no ~/.ipython/profile_default/history.sqlite
        config.InteractiveShell.colors = "nocolor"  # lowercase: IPython 9 deprecates "NoColor"; 8 ignores case
        config.InteractiveShell.xmode = "Context"
        main = sys.modules.get("__main__")
        hooks = sys.displayhook, sys.excepthook
        if ns is None and _PREMADE:  # a shell made by warm() before this process was forked: no cost here
            self.shell = _PREMADE.pop()
            self.ns = self.shell.user_ns
        else:
            self.ns = ns if ns is not None else {}
            self.ns.setdefault("__name__", "__main__")
            self.shell = _shell_class()(config=config, user_ns=self.ns)
        # the shell makes its namespace the process's __main__; the grader's own __main__
        # (multiprocessing's spawn re-imports it) must survive a reference run
        if main is not None:
            sys.modules["__main__"] = main
        sys.displayhook, sys.excepthook = hooks
        # IPython's coloured, context-rich traceback costs about 0.1 s per error (a stub raises in every
        # answer cell); ours names the cells and lines in one pass. None at all: the caller reports errors.
        self.shell.showtraceback = self._show_traceback if tracebacks else (lambda *args, **kwargs: None)
        self.labels: dict[int, str] = {}
        if execution:
            os.environ["NBGRADER_EXECUTION"] = execution
            _seed()  # a notebook that draws random numbers without a seed gets the same ones every time

    def run(self, label: str, source: str) -> CellResult:
        """Run one cell; an exception is reported, shown on stdout as in Jupyter, never raised."""
        self.labels[self.shell.execution_count] = label
        result = self.shell.run_cell(source, store_history=True, silent=False)
        exc = result.error_before_exec or result.error_in_exec
        if exc is None:
            return CellResult(label)
        return CellResult(label, False, type(exc).__name__, _message(exc), self.where(exc),
                          [c.__name__ for c in type(exc).__mro__])

    def execute(self, label: str, source: str, transform=None) -> CellResult:
        """Run a cell as IPython would translate it (magics become ``get_ipython()`` calls), without the
        shell's display, history and async machinery: ten times cheaper than :meth:`run`, for the
        grader's replay of a test cell, whose output nobody reads. ``transform``: an AST transformer."""
        import ast

        n = self.shell.execution_count
        self.shell.execution_count += 1
        self.labels[n] = label
        filename = f"<ipython-input-{n}-0>"
        try:
            tree = ast.parse(python_of(source), filename)
            code = compile(transform.visit(tree) if transform is not None else tree, filename, "exec")
            exec(code, self.ns)
        except BaseException as exc:  # as in a cell: SystemExit and KeyboardInterrupt stop only this one
            return CellResult(label, False, type(exc).__name__, _message(exc), self.where(exc),
                              [c.__name__ for c in type(exc).__mro__])
        return CellResult(label)

    def _show_traceback(self, exc_tuple=None, *args, exception_only: bool = False, **kwargs) -> None:
        exc = (exc_tuple or sys.exc_info())[1]
        if exc is None:
            return
        where = [] if exception_only else self.where(exc)
        lines = (["Traceback (most recent call last):"] + [f"  {w}" for w in where] if where else [])
        print("\n".join(lines + [f"{type(exc).__name__}: {_message(exc)}"]))

    def where(self, exc: BaseException) -> list[str]:
        """The traceback's frames that lie in notebook cells, named by cell label and line."""
        import traceback

        out = []
        for frame in traceback.extract_tb(exc.__traceback__):
            m = _INPUT.match(frame.filename or "")
            if m and int(m.group(1)) in self.labels:
                name = "" if frame.name == "<module>" else f", in {frame.name}"
                out.append(f"{self.labels[int(m.group(1))]}, line {frame.lineno}{name}")
        if isinstance(exc, SyntaxError) and exc.lineno:
            out.append(f"{self.labels.get(self.shell.execution_count - 1, 'cell')}, line {exc.lineno}")
        return out

    def filename_label(self, filename: str) -> str | None:
        """The cell label of a code object's filename (``<ipython-input-N-...>``), if it is a cell."""
        m = _INPUT.match(filename or "")
        return self.labels.get(int(m.group(1))) if m else None


@functools.lru_cache(maxsize=512)
def python_of(source: str) -> str:
    """A cell's IPython source as plain Python: magics become ``get_ipython()`` calls.

    >>> python_of("%time x = 1")
    "get_ipython().run_line_magic('time', 'x = 1')\\n"
    """
    _shell_class()
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


_PREMADE: list = []  # one empty shell, made by warm(); each process forked afterwards takes its own copy


def warm() -> None:
    """Import IPython (about 0.4 s) and make one empty shell (about 50 ms) now, in a grading worker:
    the judges and student processes forked from it later start theirs at no cost. The shell holds
    nothing but IPython's own names, so it carries no secret into a student's process."""
    import numpy.random  # noqa: F401  (Kernel seeds it: imported here, not in every student process)

    if not _PREMADE:
        _PREMADE.append(Kernel().shell)


def _seed(value: int = 0) -> None:
    """Seed Python's and numpy's global generators: the same submission, graded twice, draws the same
    numbers (in the grader, in ``edgekit check`` and in the reference alike)."""
    import random

    random.seed(value)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(value)


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[:2000]
    except Exception:  # a student's exception whose __str__ raises
        return f"<{type(exc).__name__} whose message cannot be shown>"
