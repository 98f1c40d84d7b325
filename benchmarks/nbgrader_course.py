"""nbgrader itself, driven as an instructor would: one course, ``generate_assignment``, ``autograde``.

Used by ``nbgrader_corpus.py`` (release stubs for the corpus) and ``nbgrader_fidelity.py`` (nbgrader's
verdicts). nbgrader is never a dependency of edgekit: it runs from its own venv, made once by
``grading.nbgrader_env`` (``~/.cache/edgekit-bench/nbgrader-venv``), with matplotlib added because
one corpus case draws on an ``Axes``.

A corpus assignment is a folder: ``source.ipynb`` (the nbgrader source notebook), its support files,
``submissions/<student>.ipynb``. In the course it becomes ``source/<folder>/source.ipynb`` (+ files)
and ``submitted/<student>/<folder>/source.ipynb``; autograde copies the source folder's other files
over each submission, as nbgrader does for every course.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


NOT_SUPPORT = {"submissions", "nbgrader-verdicts.json", "README.md", "source.ipynb"}

GRADEBOOK_SCORES = """
import json, sys
from nbgrader.api import Gradebook
out = {}
with Gradebook(sys.argv[1]) as gb:
    for a in json.loads(sys.argv[2]):
        for sub in gb.assignment_submissions(a):
            for nb in sub.notebooks:
                out.setdefault(a, {}).setdefault(sub.student_id, {}).update({g.name: g.auto_score for g in nb.grades})
print(json.dumps(out))
"""


def graded_cells(source: Path) -> dict[str, float]:
    """``{grade_id: points}`` of the autograded test cells (code, ``grade`` and not ``solution``)."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    cells = {}
    for c in nb["cells"]:
        m = c.get("metadata", {}).get("nbgrader", {})
        if c["cell_type"] == "code" and m.get("grade") and not m.get("solution"):
            cells[str(m["grade_id"])] = float(m.get("points", 0))
    return cells


def assignments(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if (p / "source.ipynb").is_file())


def support_files(assignment: Path) -> list[Path]:
    return sorted(p for p in assignment.iterdir() if p.name not in NOT_SUPPORT and not p.name.startswith("."))


def venv_env(venv: Path, work: Path) -> dict:
    """The venv (made once, needs a package index) and the environment its commands run in."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from grading import nbgrader_env  # the same venv as the speed benchmark

    env = nbgrader_env(venv, work)
    py = str(venv / "bin" / "python")
    if subprocess.run([py, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        import matplotlib

        subprocess.run([py, "-m", "pip", "install", "-q", f"matplotlib=={matplotlib.__version__}",
                        f"numpy=={np.__version__}"], check=True)
    return env


def nbgrader_version(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-c", "import nbgrader; print(nbgrader.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def new_course(work: Path) -> Path:
    course = work / "course"
    shutil.rmtree(course, ignore_errors=True)
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "c.ExecutePreprocessor.timeout = 60\n")
    return course


def _run(cmd: list[str], course: Path, env: dict, check: bool = True) -> tuple[float, list[tuple[float, str]]]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.perf_counter() - t0, line.rstrip("\n")) for line in proc.stdout]
    if proc.wait() != 0 and check:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n" + "\n".join(t for _, t in lines[-40:]))
    return time.perf_counter() - t0, lines


def add_source(course: Path, assignment: Path) -> None:
    dest = course / "source" / assignment.name
    dest.mkdir(parents=True)
    shutil.copyfile(assignment / "source.ipynb", dest / "source.ipynb")
    for f in support_files(assignment):
        (shutil.copytree if f.is_dir() else shutil.copyfile)(f, dest / f.name)


def release(assignment: Path, work: Path, venv: Path) -> dict:
    """What ``nbgrader generate_assignment`` gives students for this assignment (a notebook dict)."""
    env, course = venv_env(venv, work), new_course(work)
    add_source(course, assignment)
    _run([str(venv / "bin" / "nbgrader"), "generate_assignment", assignment.name, "--force"], course, env)
    return json.loads((course / "release" / assignment.name / "source.ipynb").read_text(encoding="utf-8"))


def autograde(batch: list[Path], work: Path, venv: Path, log=print) -> tuple[dict, dict]:
    """Grade every submission of every assignment in ``batch`` with nbgrader.

    Returns ``({assignment: {student: {grade_id: points}}}, {assignment: {"wall_s", "submissions",
    "per_submission_s", "failed"}})``. Only autograded test cells are kept; a cell nbgrader left
    unscored (autograde failed on that submission: its kernel died) counts 0: nbgrader gave it nothing."""
    env, course = venv_env(venv, work), new_course(work)
    nbg = str(venv / "bin" / "nbgrader")
    timing: dict[str, dict] = {}
    for a in batch:
        add_source(course, a)
        _run([nbg, "generate_assignment", a.name, "--force"], course, env)
        subs = sorted((a / "submissions").glob("*.ipynb"))
        for s in subs:
            dest = course / "submitted" / s.stem / a.name / "source.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s, dest)
        log(f"nbgrader autograde {a.name}: {len(subs)} submission(s)")
        # exit 1 when a submission failed (its kernel died): that one is logged and scores nothing
        wall, lines = _run([nbg, "autograde", a.name, "--force"], course, env, check=False)
        starts = [t for t, line in lines if "Creating/updating student" in line]
        gaps = [b - x for x, b in zip(starts, starts[1:] + [lines[-1][0]])]
        timing[a.name] = {"wall_s": round(wall, 3), "submissions": len(subs),
                          "per_submission_s": [round(g, 3) for g in gaps],
                          "failed": sorted(set(re.findall(r"error processing assignment '[^']*' for student '([^']*)'",
                                                          "\n".join(t for _, t in lines))))}
    verdicts, missing = gradebook_verdicts(course, batch, venv, env)
    for a, students in missing.items():
        timing[a]["not_in_gradebook"] = students
    return verdicts, timing


def gradebook_verdicts(course: Path, batch: list[Path], venv: Path, env: dict) -> tuple[dict, dict]:
    """``({assignment: {student: {grade_id: points}}}, {assignment: [students the gradebook lacks]})``."""
    out = subprocess.run([str(venv / "bin" / "python"), "-c", GRADEBOOK_SCORES, f"sqlite:///{course / 'gradebook.db'}",
                          json.dumps([a.name for a in batch])], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"reading nbgrader's gradebook {course / 'gradebook.db'} failed:\n{out.stderr[-3000:]}")
    scores = json.loads(out.stdout)
    verdicts, missing = {}, {}
    for a in batch:
        cells, subs = graded_cells(a / "source.ipynb"), sorted((a / "submissions").glob("*.ipynb"))
        missing[a.name] = [s.stem for s in subs if s.stem not in scores.get(a.name, {})]
        verdicts[a.name] = {s.stem: {gid: float(scores.get(a.name, {}).get(s.stem, {}).get(gid) or 0.0) for gid in cells}
                            for s in subs}
    return verdicts, missing
