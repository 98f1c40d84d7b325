"""Grade a folder of submissions: resumable, parallel over warm worker processes, or on dask.

    SUBMISSIONS/<student_id>/<notebook>.ipynb   ->   OUT/<student_id>/results.json, feedback.html
                                                     OUT/grades.csv

Each worker process is started clean (``spawn``) and imports numpy, onnxruntime and edgekit once.
Per submission it forks a judge, which forks the fenced student processes before it reads any
test or expected value. A finished submission's files are on disk before the next one starts;
re-running skips every student whose notebook (sha256) and lab (fingerprint) are unchanged.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .judge import Task, submission_hash
from .lab import Lab, LabError, load_lab
from .results import atomic_write, grades_csv, read_record, write_student


@dataclass
class BatchResult:
    lab: str
    out: Path
    records: list[dict]
    graded: list[str] = field(default_factory=list)   # graded in this run
    skipped: list[str] = field(default_factory=list)  # unchanged since a previous run
    isolation: str = ""

    @property
    def scores(self) -> dict[str, float]:
        return {r["student"]: r.get("score", 0.0) for r in self.records}


def _warm() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per submission: workers already fill the cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import nbformat  # noqa: F401  (1-2 s to import: once per worker, not per submission)
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    import edgekit.grading.judge  # noqa: F401
    import edgekit.grading.notebook  # noqa: F401
    import edgekit.grading.student  # noqa: F401
    import edgekit.model  # noqa: F401


def _run_task(task: Task) -> int:
    """In a warm worker: fork a judge for this one submission, so the worker never holds secrets."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            from .judge import grade

            grade(task)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def find_submissions(root: Path, lab: Lab) -> dict[str, Path | None]:
    """``{student: notebook}`` from ``root/<student>/*.ipynb``; None when a folder has no notebook."""
    if not root.is_dir():
        raise LabError(f"submissions folder {root} does not exist; expected {root}/<student_id>/<notebook>.ipynb")
    found: dict[str, Path | None] = {}
    # a symlinked folder is not followed (it could point anywhere); a symlinked notebook is found
    # here and refused by the judge as "unreadable", so the student sees why
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")):
        nbs = sorted(d.glob("*.ipynb"))
        preferred = [p for p in nbs if p.stem == lab.id]
        found[d.name] = (preferred or nbs or [None])[0]
    return found


def _git_dirs(start: Path) -> list[Path]:
    """The repository data of the folder holding the lab (``.git`` folder, or where a ``.git`` file points)."""
    for d in [start, *start.parents]:
        git = d / ".git"
        if git.is_dir():
            return [git]
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                target = (d / text.split(":", 1)[1].strip()).resolve()
                common = target / "commondir"
                dirs = [target] + ([(target / common.read_text().strip()).resolve()] if common.is_file() else [])
                return dirs
    return []


def _clean_debris() -> None:
    """Scratch folders and cgroups left by a grader that was killed (SIGKILL cannot clean up)."""
    import re

    for d in Path(tempfile.gettempdir()).glob("edgekit-grade-*"):
        m = re.match(r"edgekit-grade-(\d+)-", d.name)
        if m and not _alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
    from .sandbox import CGROUP_PIDS

    for g in (CGROUP_PIDS / "edgekit").glob("*") if (CGROUP_PIDS / "edgekit").is_dir() else []:
        try:
            g.rmdir()  # only empty groups go; one in use by another grader refuses
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def expected_file(lab: Lab, out: Path, cases) -> Path:
    """Expected values from the reference, computed once per lab fingerprint (kept in ``OUT/.edgekit``)."""
    from .reference import expected_values

    path = out / ".edgekit" / f"expected-{lab.id}-{lab.fingerprint()}.json"
    if not path.is_file():
        atomic_write(path, json.dumps(expected_values(lab, cases)))
    return path


def grade_batch(lab_path: str | Path, submissions: str | Path, out: str | Path, *, jobs: int | None = None,
                force: bool = False, scheduler: str | None = None, isolate: bool = True,
                hide: list[str | Path] = (), progress: bool = True, unsafe_no_cgroups: bool = False) -> BatchResult:
    """Grade every submission; see the module docstring. Returns all records (old and new).

    ``unsafe_no_cgroups``: grade even where no cgroup can cap a submission's memory and processes
    (otherwise that refuses to start, with :class:`~edgekit.grading.cgroups.CgroupError`).
    """
    if isolate and sys.platform.startswith("linux") and not unsafe_no_cgroups:
        from .cgroups import require

        require()
    lab = load_lab(lab_path)
    out, submissions = Path(out).resolve(), Path(submissions).resolve()
    cases = lab.cases()  # fail early on a broken tests.py, before touching any submission
    expected = expected_file(lab, out, cases)
    found = find_submissions(submissions, lab)
    fingerprint = lab.fingerprint()
    _clean_debris()
    scratch_root = Path(tempfile.mkdtemp(prefix=f"edgekit-grade-{os.getpid()}-")).resolve()
    # what student code must never see: this lab (and its siblings), other submissions, grades, scratch
    secret = [lab.root.resolve(), submissions, out, scratch_root, *[Path(h).resolve() for h in hide]]
    secret += _git_dirs(lab.root.resolve())  # the repository's history holds every solution ever committed
    if lab.format == "edgekit" and any((p / "lab.toml").is_file() for p in lab.root.parent.iterdir()
                                       if p.is_dir() and p != lab.root):
        secret.append(lab.root.parent.resolve())
    tasks, records, skipped = [], {}, []
    for student, nb in found.items():
        if nb is None:
            rec = {"student": student, "lab": lab.id, "status": "missing", "score": 0.0, "max_score": lab.max_score,
                   "questions": {q.id: {"score": 0.0, "max_score": q.points} for q in lab.auto_questions},
                   "notes": ["no .ipynb file in the submission folder"], "tests": [], "fingerprint": fingerprint}
            write_student(out / student, rec)
            records[student] = rec
            continue
        old = None if force else read_record(out / student)
        if old and old.get("sha256") == submission_hash(nb) and old.get("fingerprint") == fingerprint:
            records[student] = old
            skipped.append(student)
            continue
        tasks.append(Task(lab=str(lab_path), submission=str(nb), student=student, out=str(out),
                          scratch=str(scratch_root / student), expected=str(expected), limits=lab.limits,
                          hide=[str(p) for p in secret], isolate=isolate, questions=len(lab.questions),
                          unsafe_no_cgroups=unsafe_no_cgroups))
    graded: list[str] = []
    try:
        if scheduler:
            from .remote import run_on_dask

            for rec in run_on_dask(scheduler, tasks, _progress(progress, len(tasks))):
                records[rec["student"]] = rec
                graded.append(rec["student"])
        else:
            _run_local(tasks, jobs or os.cpu_count() or 1, records, graded, progress)
    finally:  # also on Ctrl-C: the grades of everything finished so far
        shutil.rmtree(scratch_root, ignore_errors=True)
        rows = [records[s] for s in sorted(records)]
        atomic_write(out / "grades.csv", grades_csv(rows, [q.id for q in lab.questions]))
    iso = {str(r["isolation"].get("level")) for r in records.values() if r.get("isolation")}
    return BatchResult(lab.id, out, [records[s] for s in sorted(records)], graded, skipped, ",".join(sorted(iso)))


def _progress(enabled: bool, total: int):
    from contextlib import nullcontext

    if not enabled or total == 0:
        return nullcontext(lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    class _Bar:
        def __enter__(self):
            self.p = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
            self.p.__enter__()
            self.t = self.p.add_task("grading", total=total)
            return lambda: self.p.advance(self.t)

        def __exit__(self, *exc):
            return self.p.__exit__(*exc)

    return _Bar()


def _run_local(tasks: list[Task], jobs: int, records: dict, graded: list, progress: bool) -> None:
    if not tasks:
        return
    if not hasattr(os, "fork"):
        raise LabError("grading needs os.fork (Linux, or macOS with weaker isolation); on Windows use WSL, "
                       "or let students self-check with `edgekit check`")
    from .process import clean_environ

    ctx = mp.get_context("spawn")  # clean workers: never a copy of this process, which knows the answers
    # ... nor of its environment: /proc/<pid>/environ keeps what a process started with (tokens)
    with clean_environ(), _progress(progress, len(tasks)) as advance, ProcessPoolExecutor(
            max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=_warm) as pool:
        futures = {pool.submit(_run_task, t): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                code = fut.result()
            except Exception as exc:  # a worker died: record it and go on
                code = f"worker failed: {exc}"
            rec = read_record(Path(task.out) / task.student)
            if rec is None or rec.get("sha256") != submission_hash(task.submission):
                rec = {"student": task.student, "status": "error", "score": 0.0, "questions": {}, "tests": [],
                       "notes": [f"the grader crashed on this submission (exit {code}); it was not graded"],
                       "sha256": "", "max_score": 0.0}
                write_student(Path(task.out) / task.student, rec)
            records[task.student] = rec
            graded.append(task.student)
            advance()


if __name__ == "__main__":  # pragma: no cover
    print(grade_batch(sys.argv[1], sys.argv[2], sys.argv[3]).scores)
