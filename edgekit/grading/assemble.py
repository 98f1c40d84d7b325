"""Assemble what runs: the student's cells in the student's order, the instructor's cells restored.

Grading runs a submission as Jupyter would run it: every code cell of the student's notebook,
top to bottom, in one namespace — cells the student added included. Only the cells the
instructor owns are put back from the instructor's copy, whatever the submission holds:

=============  ====================================  ==========================================
format         instructor-owned (restored)           student-owned (run as submitted)
=============  ====================================  ==========================================
edgekit        context cells (no role), ``check``    ``answer`` cells, cells the student added
               and ``no-grade`` (both skipped)
nbgrader       ``grade`` (tests, hidden parts back)  ``solution`` cells and every unmarked cell
               and ``locked`` cells                  (nbgrader leaves those to the student)
=============  ====================================  ==========================================

An instructor cell is found in the submission by its ``question``/``grade_id`` metadata, then by
cell id, then by its released source — one rule for nbformat 4.0 to 4.5, with or without cell
ids (JupyterLab 3/4, Notebook 7, VS Code and Colab all keep metadata; 4.0-4.4 files have no ids).
A deleted instructor cell is put back after its neighbour. ``edgekit check`` uses the same
function with no instructor copy: the student's own notebook, with the same cells skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .notebook import HIDDEN, role

RUNS = ("answer", "context", "added", "test", "locked")  # kinds of cell that run; check/no-grade do not


def _role(cell) -> tuple[str, str | None]:
    """A cell's role in a submission or its source, never raising (the lab's own cells were checked at load)."""
    return role(cell, trusted=False)


@dataclass
class Cell:
    """One cell of the program, labelled as the student can find it in their notebook."""

    label: str
    source: str
    kind: str  # answer | context | added | test | locked | check | no-grade
    owner: str  # "student" (runs as submitted) or "instructor" (restored from the instructor's copy)
    question: str | None = None
    heading: str = ""  # the markdown heading above the cell, for feedback

    @property
    def runs(self) -> bool:
        return self.kind in RUNS


@dataclass
class Program:
    """The cells to run, in order, and what happened to the student's notebook on the way."""

    cells: list[Cell]
    notes: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)  # questions whose answer cell was not found

    @property
    def runnable(self) -> list[Cell]:
        return [c for c in self.cells if c.runs]


def _text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _key(cell, fmt: str) -> tuple[str, str] | None:
    """The metadata that names a cell for good: an edgekit role + question, or an nbgrader grade_id."""
    meta = cell.get("metadata") or {}
    if fmt == "nbgrader":
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        return ("nbgrader", str(nbg["grade_id"])) if nbg.get("grade_id") and (
            nbg.get("solution") or nbg.get("grade") or nbg.get("locked")) else None
    kind, qid = _role(cell)
    return (kind, qid) if kind in ("answer", "check") and qid else None


def _kind(cell, fmt: str) -> str:
    kind, _ = _role(cell)
    if fmt == "nbgrader":
        nbg = (cell.get("metadata") or {}).get("nbgrader") or {}
        if kind == "context" and isinstance(nbg, dict) and nbg.get("locked"):
            return "locked"
    return kind


def _instructor_owned(kind: str, fmt: str) -> bool:
    return kind in (("test", "locked") if fmt == "nbgrader" else ("context", "check", "no-grade"))


def _released(source: str) -> str:
    return HIDDEN.sub("", source).strip()


def _headings(cells) -> list[str]:
    out, current = [], ""
    for c in cells:
        if c.get("cell_type") == "markdown":
            m = re.search(r"^#{1,6}\s+(.+)$", _text(c), re.M)
            current = m.group(1).strip() if m else current
        out.append(current)
    return out


def assemble(source, submission, fmt: str = "edgekit") -> Program:
    """The program for ``submission`` (an nbformat notebook) against the instructor's ``source``.

    ``source`` None: the submission alone, as ``edgekit check`` runs it (same skipping rules).
    """
    theirs = [(i, c) for i, c in enumerate(submission.cells) if c.get("cell_type") == "code"]
    heads = _headings(submission.cells)
    notes: list[str] = []
    mine_src = [c for c in (source.cells if source is not None else []) if c.get("cell_type") == "code"]
    claim: dict[int, int] = {}  # submission cell index -> source code cell index
    taken: set[int] = set()

    def take(si: int, i: int) -> None:
        claim[i] = si
        taken.add(i)

    # 1. by metadata; 2. by cell id; 3. by the released source (instructor cells only)
    for si, sc in enumerate(mine_src):
        key = _key(sc, fmt)
        if key is None:
            continue
        same = [i for i, c in theirs if i not in taken and _key(c, fmt) == key]
        if same and _instructor_owned(_kind(sc, fmt), fmt):
            take(si, same[0])
            if len(same) > 1:
                notes.append(f"{key[1]}: {len(same)} copies of this instructor cell; the first was used, "
                             "the copies were left out")
                taken.update(same[1:])
        elif same:
            for i in same:
                take(si, i)
            if len(same) > 1:
                notes.append(f"{key[1]}: {len(same)} cells claim to be this answer; all of them run, in your "
                             "order, so the last definition wins (as in Jupyter)")
    matched = set(claim.values())
    by_id = {str(c.get("id")): i for i, c in theirs if c.get("id")}
    for si, sc in enumerate(mine_src):
        if si in matched or not sc.get("id"):
            continue
        i = by_id.get(str(sc.get("id")))
        if i is not None and i not in taken and _key(submission.cells[i], fmt) in (None, _key(sc, fmt)):
            take(si, i)
            matched.add(si)
    last = -1
    for si, sc in enumerate(mine_src):
        if si in matched:
            last = max(last, next(i for i, s in claim.items() if s == si))
            continue
        if not _instructor_owned(_kind(sc, fmt), fmt):
            continue
        want = _released(_text(sc))
        i = next((i for i, c in theirs if i > last and i not in taken and _key(c, fmt) is None
                  and _text(c).strip() == want), None)
        if i is not None:
            take(si, i)
            matched.add(si)
            last = i

    # where a deleted instructor cell goes back: after the submission cell of its nearest matched predecessor
    restore: dict[int, list[int]] = {}
    anchor = -1
    for si, sc in enumerate(mine_src):
        if si in matched:
            anchor = max(i for i, s in claim.items() if s == si)
        elif _instructor_owned(_kind(sc, fmt), fmt):
            restore.setdefault(anchor, []).append(si)
        elif _kind(sc, fmt) == "answer":
            qid = _role(sc)[1]
            notes.append(f"{qid}: your answer cell was not found (deleted, or its metadata changed); "
                         "nothing of yours ran for it")

    cells: list[Cell] = []

    def restored(si: int, where: str) -> Cell:
        sc = mine_src[si]
        kind = _kind(sc, fmt)
        key = _key(sc, fmt)
        return Cell(f"{where} (restored)", _text(sc), kind, "instructor", key[1] if key else _role(sc)[1])

    for si in restore.get(-1, []):
        cells.append(restored(si, "start of the notebook"))
    for i, c in theirs:
        label = f"cell {i + 1}"
        if i in claim:
            sc = mine_src[claim[i]]
            kind = _kind(sc, fmt)
            qid = (_key(sc, fmt) or (None, _role(sc)[1]))[1]
            if _instructor_owned(kind, fmt):
                cells.append(Cell(label + (f" ({qid})" if qid else ""), _text(sc), kind, "instructor", qid, heads[i]))
            else:
                cells.append(Cell(label + (f" ({qid})" if qid else ""), _text(c), kind, "student", qid, heads[i]))
        elif i in taken:  # a copy of an instructor cell: left out (noted above)
            continue
        else:
            kind = _kind(c, fmt)
            qid = _role(c)[1]
            if source is None:
                owner = "student"
            elif kind in ("test", "locked", "check", "no-grade") or (fmt == "edgekit" and kind == "answer"):
                # metadata copied onto a cell the instructor never wrote: run it as the student's code
                kind, owner = ("added" if kind in ("test", "locked", "answer") else kind), "student"
            else:
                kind, owner = ("context" if fmt == "nbgrader" else "added"), "student"
            cells.append(Cell(label + (f" ({qid})" if qid and kind in ("answer", "test") else ""), _text(c), kind,
                              owner, qid, heads[i]))
        for si in restore.get(i, []):
            cells.append(restored(si, f"after cell {i + 1}"))
    missing = {_role(sc)[1] for si, sc in enumerate(mine_src) if si not in matched and _kind(sc, fmt) == "answer"}
    return Program(cells, notes, missing)
