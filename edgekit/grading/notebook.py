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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lab import Lab, LabError

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


def release(lab: Lab, out_dir: str | Path) -> list[Path]:
    """Write the student version of ``lab`` into ``out_dir``: the notebook and its public checks.

    Solutions become stubs, instructor cells and hidden tests go, outputs are cleared. The
    output depends only on the lab's files, so releasing twice gives byte-identical files.
    """
    import nbformat

    from .check import public_checks

    checks = public_checks(lab) if lab.format == "edgekit" else None  # fails early on a broken reference
    nb = copy.deepcopy(lab.notebook())
    cells = []
    for cell in nb.cells:
        kind, qid = role(cell)
        if kind == "instructor":
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if kind == "answer":
            title = lab.question(qid).title if lab.format == "edgekit" else qid
            cell.source = stub(cell.source, f"{lab.label(qid)}: {title}" if lab.format == "edgekit" else
                               f"{qid}: write your answer here")
        elif kind == "test":
            cell.source = HIDDEN.sub("", cell.source)
        cells.append(cell)
    nb.cells = cells
    nb.metadata["edgekit"] = {"lab": lab.id, "release": 1}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{lab.id}.ipynb"
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    written = [path]
    for rel in lab.files:  # public support files (data, a helper module) sit next to the notebook
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((lab.root / rel).read_bytes())
        written.append(dest)
    if checks is not None:
        cpath = out / f"{lab.id}.checks.json"
        cpath.write_text(json.dumps(checks, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        written.append(cpath)
    return written


@dataclass
class Program:
    """What runs in the student's process: the instructor's cells with the student's answers spliced in."""

    cells: list[tuple[str, str]]            # (label, source)
    notes: list[str] = field(default_factory=list)  # what happened to the student's cells
    missing: set[str] = field(default_factory=set)  # questions whose answer cell was not found


def splice(lab: Lab, submission) -> Program:
    """Rebuild the notebook from the instructor's source, taking only the student's answer cells.

    Answer cells are matched by cell id, then by question id in metadata, so reordered cells are
    found; a deleted answer cell runs as the stub (only that question loses points); duplicates
    are noted and the first is used. Everything else — context cells, tests — comes from the
    instructor's copy, whatever the submission contains.
    """
    src = lab.notebook()
    theirs = [c for c in submission.cells if c.get("cell_type") == "code"]
    by_id: dict[str, list] = {}
    by_q: dict[str, list] = {}
    for c in theirs:
        by_id.setdefault(str(c.get("id")), []).append(c)
        kind, qid = role(c)
        if kind == "answer":
            by_q.setdefault(qid, []).append(c)
    program, used = Program([]), set()
    for i, cell in enumerate(src.cells):
        kind, qid = role(cell)
        label = f"cell {i + 1}" + (f" ({qid})" if qid else "")
        if kind in ("markdown", "instructor", "check", "no-grade", "test", "raw"):
            continue
        if kind != "answer":
            program.cells.append((label, cell.source))
            continue
        mine = [c for c in by_id.get(str(cell.get("id")), []) if id(c) not in used]
        if not mine:
            mine = [c for c in by_q.get(qid, []) if id(c) not in used]
        if not mine:
            program.missing.add(qid)
            program.notes.append(f"{qid}: your answer cell was not found (deleted, or its metadata changed); "
                                 "it was graded as unanswered")
            program.cells.append((label, stub(cell.source, f"{qid}: answer cell missing")))
            continue
        if len(mine) > 1:
            program.notes.append(f"{qid}: {len(mine)} cells claim to be this answer; the first was graded")
        used.add(id(mine[0]))
        source = mine[0].get("source", "")
        program.cells.append((label, "".join(source) if isinstance(source, list) else str(source)))
    return program


def nbgrader_cases(lab: Lab) -> list:
    """One case per nbgrader test cell: full points when the cell runs without an exception.

    All test cells share one :class:`NbgraderRun`, which replays the notebook in the grader in
    order — context and test cells run here, answer cells bind the names they define to the
    student's values — so state flows between cells as it does in nbgrader's single kernel.
    """
    from .cases import Case, equal

    replayed, tests = [], []
    for cell in lab.notebook().cells:
        kind, qid = role(cell)
        if kind in ("context", "answer", "test"):
            if kind == "test":
                tests.append((qid, len(replayed)))
            replayed.append((kind, cell.source))
    run = NbgraderRun(replayed)
    return [Case(qid, "test cell", AssertCell(run, i), equal()) for qid, i in tests]


class NbgraderRun:
    """The notebook replayed in the grader, one cell at a time, in one trusted namespace."""

    def __init__(self, cells: list[tuple[str, str]]):
        self.cells, self.done, self.env = cells, 0, None

    def run_to(self, index: int, ns: Any) -> None:
        """Replay cells up to ``index`` (a test cell) and run it; raises what the test cell raises."""
        from .judge import student_names
        from .runcells import fresh_namespace, plain_python, run_cells

        if self.env is None:
            self.env = fresh_namespace()
        while self.done <= index:
            kind, source = self.cells[self.done]
            self.done += 1
            if kind == "answer":  # the names this answer defines now mean the student's values
                self.env.update(student_names(source, ns))
            elif kind == "context":
                run_cells([("context", source)], self.env)
            elif self.done - 1 == index:
                exec(compile(plain_python(source), "<test cell>", "exec"), self.env)
            else:  # an earlier test cell: already graded; replay it for the state it leaves
                run_cells([("test", source)], self.env)


@dataclass(frozen=True)
class AssertCell:
    """An nbgrader test cell, run in the grader by the shared :class:`NbgraderRun`."""

    run: NbgraderRun
    index: int

    def __call__(self, ns: Any) -> Any:
        self.run.run_to(self.index, ns)
        return True

    def describe(self) -> str:
        return "nbgrader test cell"
