"""Notebooks: cell roles, the student release, and splicing a submission into the instructor's notebook.

A code cell's role comes from its first line, a comment as otter writes it (``# edgekit: answer
q1``: seen in the notebook and in diffs), or from its metadata, ``{"edgekit": {"role": ...,
"question": ...}}``; a cell with both must say the same in both:

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


ROLES = {"answer": True, "check": True, "instructor": False, "no-grade": False}  # role -> names a question
ROLE_LINE = re.compile(r"[ \t]*#[ \t]*edgekit:(.*)")


def role_comment(kind: str, question: str | None = None) -> str:
    """The first line that gives a cell its role: ``# edgekit: answer q1``, ``# edgekit: no-grade``."""
    return f"# edgekit: {kind}" + (f" {question}" if question is not None else "")


def _role_line(source: str) -> tuple[str, str]:
    """``(role line with its newline, the rest)``; the line is empty when the cell has none."""
    first, nl, rest = source.partition("\n")
    return (first + nl, rest) if ROLE_LINE.fullmatch(first.rstrip("\r")) else ("", source)


def _comment_role(cell) -> tuple[str, str | None] | None:
    src = cell.get("source", "")
    line = _role_line("".join(src) if isinstance(src, list) else str(src))[0].strip()
    if not line:
        return None
    words = ROLE_LINE.fullmatch(line).group(1).split()
    if not words or words[0] not in ROLES or len(words) != 1 + ROLES[words[0]]:
        raise LabError(f"cell {cell.get('id', '?')}: its first line {line!r} is not a cell role; expected one of "
                       + ", ".join(repr(role_comment(k, "q1" if q else None)) for k, q in ROLES.items())
                       + " (or no such comment: a context cell)")
    return words[0], (words[1] if len(words) > 1 else None)


def role(cell, *, trusted: bool = True) -> tuple[str, str | None]:
    """``(role, question)`` of a cell, from its first-line comment, edgekit or nbgrader metadata.

    ``trusted`` (the instructor's notebook): a :class:`LabError` when the comment and the edgekit
    metadata disagree, or the comment is not a role, so the author fixes it. A submission's cell
    (``trusted=False``) never raises — a student's stray ``# edgekit:`` line must not cost the
    notebook: its metadata wins, then a comment that is a role, else the cell is context.
    """
    if cell.get("cell_type") != "code":
        return "markdown", None
    meta = cell.get("metadata") or {}
    ek = meta.get("edgekit") if isinstance(meta.get("edgekit"), dict) else {}
    said = (str(ek["role"]), str(ek["question"]) if ek.get("question") is not None else None) if ek.get("role") else None
    try:
        comment = _comment_role(cell)
    except LabError:
        if trusted:
            raise
        comment = None
    if trusted and said and comment and said != comment:
        raise LabError(f"cell {cell.get('id', '?')}: its first line says {role_comment(*comment)!r} but its metadata "
                       f"says role {said[0]!r}, question {said[1]!r}; make the two agree, or delete one of them "
                       "(the released notebook has both)")
    if said or comment:
        return (said or comment) if not trusted else (comment or said)
    nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
    if nbg.get("solution"):
        return "answer", str(nbg.get("grade_id"))
    if nbg.get("grade"):
        return "test", str(nbg.get("grade_id"))
    return "context", None


def stub(source: str, label: str) -> str:
    """Replace each marked solution with a ``NotImplementedError`` naming the question (a role line stays)."""
    head, body = _role_line(source)
    if not SOLUTION.search(body):
        return f'{head}raise NotImplementedError("{label}")\n'
    return head + SOLUTION.sub(lambda m: f'{m.group(1)}raise NotImplementedError("{label}"){m.group(2)}', body)


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
