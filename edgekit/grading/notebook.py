"""Notebooks: cell roles, the student release, and splicing a submission into the instructor's notebook.

A code cell's role comes from its metadata, ``{"edgekit": {"role": ..., "question": ...}}``:

==============  =====================================================================
``answer``      the student's answer to ``question``; solution between markers
``check``       a public self-check cell (``check("q1")``); kept, not run when grading
``instructor``  removed from the student version and never run when grading
``no-grade``    kept for students, skipped when grading (slow demos, plots)
(none)          context: kept, and always run from the instructor's copy
==============  =====================================================================

nbgrader metadata is understood too: ``solution: true`` is an answer, ``grade: true`` a test.

>>> stub("    ### BEGIN SOLUTION\\n    return x * 2\\n    ### END SOLUTION\\n", "Lab 1, question 2: double")
'    raise NotImplementedError("Lab 1, question 2: double")\\n'
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import LabError

if TYPE_CHECKING:
    from .lab import Lab

SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S)
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)", re.M | re.S)


def read_notebook(path: str | Path):
    """Read a notebook with nbformat; a clear :class:`LabError` if it is not one."""
    from .._extras import require

    nbformat = require("nbformat", extra="lab", purpose="reading notebooks")
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and reader errors of many kinds
        raise LabError(f"{path} is not a readable notebook ({type(exc).__name__}: {exc}); "
                       "open it in Jupyter and save it again, or restore it from the released copy") from None


def role(cell) -> tuple[str, str | None]:
    """``(role, question)`` of a cell, from edgekit or nbgrader metadata."""
    if cell.get("cell_type") != "code":
        return "markdown", None
    meta = cell.get("metadata") or {}
    ek = meta.get("edgekit") if isinstance(meta.get("edgekit"), dict) else {}
    if ek.get("role"):
        return str(ek["role"]), (str(ek["question"]) if ek.get("question") is not None else None)
    nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
    if nbg.get("solution"):
        return "answer", str(nbg.get("grade_id"))
    if nbg.get("grade"):
        return "test", str(nbg.get("grade_id"))
    return "context", None


def stub(source: str, label: str) -> str:
    """Replace each marked solution with a ``NotImplementedError`` naming the question."""
    if not SOLUTION.search(source):
        return f'raise NotImplementedError("{label}")\n'
    return SOLUTION.sub(lambda m: f'{m.group(1)}raise NotImplementedError("{label}"){m.group(2)}', source)


def nbgrader_cases(lab: Lab) -> list:
    """One case per nbgrader test cell, worth its points (all or nothing, as in nbgrader).

    The cell itself is decided by :mod:`edgekit.grading.replay` while the notebook runs; the
    case only names it (for ``edgekit lab info``, the scores and the expected-values file).
    """
    from .cases import Case, equal

    return [Case(qid, "test cell", TestCell(qid), equal()) for kind, qid in map(role, lab.notebook().cells)
            if kind == "test"]


@dataclass(frozen=True)
class TestCell:
    """An nbgrader test cell, named by its ``grade_id``; run by the judge, never called as a target."""

    grade_id: str

    def __call__(self, ns: Any) -> Any:
        raise TypeError("an nbgrader test cell is decided while the notebook runs (edgekit.grading.replay)")

    def describe(self) -> str:
        return f"nbgrader test cell {self.grade_id}"
