"""Find what to grade in ``SUBMISSIONS/<student>/``: which notebook, and what was left aside.

Students rename notebooks (``lab01-first-inference (1).ipynb`` from a second download,
``-Copy1`` from JupyterLab) and leave stubs beside them (``Untitled.ipynb``). The notebook graded
is, in order: the one whose metadata says it is this lab (``metadata.edgekit.lab``, written by
``edgekit lab release``; for an nbgrader lab, the one sharing the most ``grade_id``s with the
source), then one named like the lab (any case, ``(1)`` and ``-Copy1`` suffixes allowed), then
the most recently saved. Every other file in the folder gets a note in the student's feedback,
so "my real work was not graded" is visible at once. Hidden entries (``.ipynb_checkpoints``,
``.DS_Store``) are ignored silently; a symlinked notebook is never opened here (it could point
anywhere) and is refused by the judge if chosen.

A student folder whose name is one the grader writes in the grades folder (``grades.csv``,
``.edgekit``) would overwrite that output, or make writing it fail: it is refused, alone.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .lab import Lab, LabError

OUTPUT_NAMES = ("grades.csv", ".edgekit")  # what grade_batch writes in OUT beside the student folders
MAX_NOTES = 20
_MAX_INSPECT_BYTES = 64 * 2**20  # the judge's own limit on notebooks (judge.MAX_NOTEBOOK_BYTES)


@dataclass
class Submission:
    """One student folder: the notebook to grade (None: there is none), notes, or why it is refused."""

    student: str
    folder: Path
    notebook: Path | None = None
    notes: list[str] = field(default_factory=list)
    refused: str = ""


def find_submissions(root: Path, lab: Lab) -> dict[str, Submission]:
    """``{student: Submission}`` for every folder ``root/<student>/`` (symlinked folders are not followed)."""
    root = Path(root)
    if not root.is_dir():
        raise LabError(f"submissions folder {root} does not exist; expected {root}/<student_id>/<notebook>.ipynb")
    marks = _lab_marks(lab)
    found: dict[str, Submission] = {}
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or d.is_symlink() or not d.is_dir():
            continue  # a symlinked folder could point anywhere: the lab, another student, /
        sub = Submission(d.name, d)
        if d.name.casefold() in {n.casefold() for n in OUTPUT_NAMES}:
            sub.refused = (f"the submission folder is named {d.name!r}, which is the name of a file the grader "
                           f"writes in the grades folder; rename the folder (e.g. to the student's id) and grade again")
        else:
            sub.notebook, sub.notes = pick_notebook(d, lab, marks)
        found[d.name] = sub
    return found


def pick_notebook(folder: Path, lab: Lab, marks: frozenset[str] | None = None) -> tuple[Path | None, list[str]]:
    """The notebook to grade in ``folder`` and a note for every other entry left aside."""
    marks = _lab_marks(lab) if marks is None else marks
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    notebooks = [p for p in entries if p.suffix.lower() == ".ipynb" and not _is_dir(p)]
    if not notebooks:
        return None, []
    if len(notebooks) == 1:  # nothing to choose between: no need to read it here
        chosen, why = notebooks[0], "the only notebook"
    else:
        ranks = {p: _rank(p, lab, marks) for p in notebooks}
        chosen = max(notebooks, key=ranks.__getitem__)
        why = _why(ranks[chosen], lab)
    notes = []
    for p in entries:
        if p == chosen:
            continue
        if p in notebooks:
            notes.append(f"{p.name} was not graded: {chosen.name} was ({why}); "
                         f"submit one notebook, or name the one to grade {lab.id}.ipynb")
        elif p.name == "_other" and _is_dir(p):  # what `edgekit collect` set aside from the LMS download
            kept = sorted(q.relative_to(p).as_posix() for q in p.rglob("*") if not _is_dir(q))
            notes.append(f"not graded, set aside when your submission was collected: {', '.join(kept[:10])}"
                         + (f" and {len(kept) - 10} more" if len(kept) > 10 else ""))
        else:
            kind = "folder" if _is_dir(p) else "file"
            notes.append(f"the {kind} {p.name} was ignored: only the notebook is graded "
                         f"(the lab's own files are provided to it)")
    if len(notes) > MAX_NOTES:
        notes = notes[:MAX_NOTES] + [f"... and {len(notes) - MAX_NOTES} more entries were ignored"]
    return chosen, notes


def _is_dir(p: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(p).st_mode)
    except OSError:
        return False


def _lab_marks(lab: Lab) -> frozenset[str]:
    """What identifies this lab inside a notebook: its id (edgekit), or its grade_ids (nbgrader)."""
    if lab.format != "nbgrader":
        return frozenset()
    return frozenset(gid for gid in (_grade_id(c) for c in lab.notebook().cells) if gid)


def _grade_id(cell) -> str:
    meta = cell.get("metadata") or {}
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return str(nbg.get("grade_id") or "") if isinstance(nbg, dict) else ""


def _rank(p: Path, lab: Lab, marks: frozenset[str]) -> tuple[int, bool, float]:
    """(metadata match, name match, modification time): bigger is a better candidate."""
    try:
        st = os.lstat(p)
    except OSError:
        return (0, False, 0.0)
    return (_metadata_match(p, st, lab, marks), _name_match(p.stem, lab.id), st.st_mtime)


def _name_match(stem: str, lab_id: str) -> bool:
    """``lab01``, ``LAB01``, ``lab01 (1)``, ``lab01-Copy1``, ``lab01-Copy1 (2)`` all name lab ``lab01``."""
    return re.fullmatch(re.escape(lab_id.casefold()) + r"(\s*\(\d+\)|-copy\d*)*", stem.casefold().strip()) is not None


def _metadata_match(p: Path, st: os.stat_result, lab: Lab, marks: frozenset[str]) -> int:
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_INSPECT_BYTES:
        return 0  # a link or a device is never opened here; the judge refuses it, saying why
    try:
        nb = json.loads(p.read_bytes())
        if lab.format != "nbgrader":
            return int(nb["metadata"]["edgekit"]["lab"] == lab.id)
        return len(marks & {_grade_id(c) for c in nb.get("cells", []) if isinstance(c, dict)} - {""})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0


def _why(rank: tuple[int, bool, float], lab: Lab) -> str:
    if rank[0]:
        return f"its metadata says it is {lab.id}"
    if rank[1]:
        return f"its name says it is {lab.id}"
    return "it was saved most recently"
