"""Labs and their autograder: release student notebooks, let students self-check, grade safely.

    lab.py        the lab format (lab.toml + instructor notebook + tests.py; nbgrader notebooks too)
    cases.py      what tests.py declares: case(), call(), get(), obj(), close(), equal(), within()
    notebook.py   cell roles, the student release, splicing answers into the instructor's notebook
    check.py      students' self-check: check("q1") in a notebook, `edgekit check` in a shell
    reference.py  the instructor's solution run once, for expected values
    wire.py       values across the wall between grader and student process (JSON, never pickle)
    sandbox.py    Linux namespaces, read-only mounts, rlimits, dropped capabilities
    process.py    one fenced student process, as the grader sees it
    student.py    the loop inside it: run the notebook, answer requests for values
    judge.py      one submission: compare the student's values with the reference, score
    results.py    results.json (Gradescope), feedback.html, grades.csv
    batch.py      a folder of submissions: parallel, resumable; remote.py: the same on dask

See labs/README.md for the format and the threat model.
"""

from .cases import Case, call, case, close, equal, get, obj, ref, within
from .check import check, checker, check_notebook
from .lab import Lab, LabError, Limits, load_lab

__all__ = ["Case", "Lab", "LabError", "Limits", "call", "case", "check", "check_notebook", "checker", "close",
           "equal", "get", "grade_batch", "load_lab", "obj", "ref", "release", "within"]


def release(lab, out_dir):
    """Write the student version of a lab (path or :class:`Lab`) into ``out_dir``; returns the files."""
    from .notebook import release as _release

    return _release(lab if isinstance(lab, Lab) else load_lab(lab), out_dir)


def grade_batch(*args, **kwargs):
    """Grade a folder of submissions; see :func:`edgekit.grading.batch.grade_batch`."""
    from .batch import grade_batch as _grade_batch

    return _grade_batch(*args, **kwargs)
