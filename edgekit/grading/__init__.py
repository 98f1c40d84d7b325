"""Labs and their autograder: release student notebooks, let students self-check, grade safely.

    lab.py        the lab format (lab.toml + instructor notebook + tests.py; nbgrader notebooks too)
    cases.py      what tests.py declares: case(), and the comparisons close(), equal(), within(), against()
    targets.py    what a case asks the student's code for: call(), get(), obj(), ref(), raised(); values shown
    notebook.py   reading notebooks, cell roles, nbgrader's test cells
    handout.py    the student release: stubs, no instructor cells or hidden tests, public checks
    assemble.py   what runs: the student's cells in their order, the instructor's cells restored
    kernel.py     running cells as Jupyter does (in-process IPython), for grader, reference and check
    autotest.py   nbgrader's ### AUTOTEST directives, expanded as nbgrader does
    selfcheck.py  students' self-check: check("q1") in a notebook, `edgekit check` in a shell
    feedback.py, local_limits.py   the words of a failure (the same in check() and the grader's
                  feedback); the grader's call_s and output_kb applied in a student's own kernel
    reference.py  the instructor's solution run once, for expected values
    wire.py       values across the wall between grader and student process (JSON, never pickle)
    errors.py     the student's exceptions, rebuilt in the grader by name and builtin base
    sandbox.py    Linux namespaces, an allow-list root, rlimits, dropped capabilities
    cgroups.py, seccomp_filter.py   caps per submission (v1 and v2); the system calls refused
    fence_check.py                  `edgekit doctor --grading`: each layer of the fence, tried
    process.py    one fenced student process, as the grader sees it (child.py: its side, before any
                  student code; handles.py: objects that stay in it, used through handles)
    student.py    the loop inside it: run the notebook, answer requests for values
    replay.py     an nbgrader test cell decided in the grader against a probe of the student's process
    fenced.py     trusted code on student-made data (a model to audit) in a limited child process
    judge.py      one submission: compare the student's values with the reference, score
    results.py    results.json (Gradescope), feedback.html, grades.csv; a batch's BatchResult
    submissions.py, cleanup.py   which notebook in a folder is graded; removing student-made trees
    batch.py      a folder of submissions: parallel, resumable; remote.py: the same on dask;
                  interrupt.py: Ctrl-C noted even where Python drops it, held while files are written
    collect.py    an LMS download (Moodle, Canvas, Gradescope) into SUBMISSIONS/<id>/ + roster.csv;
                  downloads.py: reading it safely, and whose each file is
    late.py       the late policy ([late] in lab.toml) and its penalty, applied from SUBMISSIONS/roster.csv
    lms_export.py grades.csv + roster as Moodle's or Canvas's grade import CSV (`edgekit export`)
    worksheet.py  Moodle's grading worksheet: e-mails and times for collect, grades filled back for export

See labs/README.md for the format and the threat model.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {  # lazily imported, so `edgekit --help` (which registers grading's subcommands) stays light
    "Case": "cases", "call": "cases", "case": "cases", "close": "cases", "equal": "cases", "get": "cases",
    "obj": "cases", "ref": "cases", "within": "cases", "raised": "cases", "against": "cases",
    "check": "selfcheck", "checker": "selfcheck", "check_notebook": "selfcheck",
    "Lab": "lab", "LabError": "lab", "Limits": "lab", "load_lab": "lab",
}

__all__ = sorted([*_LAZY, "grade_batch", "release"])


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'edgekit.grading' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value



def release(lab, out_dir):
    """Write the student version of a lab (path or :class:`Lab`) into ``out_dir/<lab id>/``; returns the files."""
    from .lab import Lab, load_lab
    from .handout import release as _release

    return _release(lab if isinstance(lab, Lab) else load_lab(lab), out_dir)


def grade_batch(*args, **kwargs):
    """Grade a folder of submissions; see :func:`edgekit.grading.batch.grade_batch`."""
    from .batch import grade_batch as _grade_batch

    return _grade_batch(*args, **kwargs)
