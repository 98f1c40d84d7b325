"""Grade a folder of submissions: resumable, parallel over warm worker processes, or on dask.

    SUBMISSIONS/<student_id>/<notebook>.ipynb   ->   OUT/<student_id>/results.json, feedback.html
                                                     OUT/grades.csv

Each worker process is started clean (``spawn``) and imports numpy, onnxruntime and edgekit once.
Per submission it forks a judge, which forks the fenced student processes before it reads any
test or expected value. A finished submission's files are on disk before the next one starts;
re-running skips every student whose notebook (sha256) and lab (fingerprint) are unchanged.

Workers die with the grader, even after ``kill -9`` (their judges and students with them), and
Ctrl-C is the grader's alone: it stops the batch, abandons what is in flight, and still writes
``grades.csv`` (a ``not graded`` row per submission left). Scratch folders are removed without
recursion (:mod:`edgekit.grading.cleanup`): whatever a student left there, the next batch runs.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from . import interrupt
from .cleanup import clean_debris, remove_tree
from .judge import Task, submission_hash
from .lab import Lab, LabError, load_lab
from .late import apply_roster, load_roster
from .results import BatchResult, atomic_write, grades_csv, read_record, write_student
from .submissions import Submission, find_submissions
from .worksheet import keep as keep_worksheet

__all__ = ["BatchResult", "Interrupted", "Submission", "find_submissions", "grade_batch"]
CLEANUP_BUDGET_S = 30.0  # removing one scratch tree; what is left is reported and retried next run


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`grade_batch`: ``grades.csv`` was written; ``result`` says what was not graded."""

    def __init__(self, result: BatchResult):
        super().__init__(f"interrupted: {len(result.not_graded)} submission(s) not graded")
        self.result = result

# What student notebooks import (``import edgekit as ek; ek.load(...)``), loaded once per worker so
# that every forked student process starts with it. A preload by name, not a dependency: the grader
# never calls it (grading/ builds only on edgekit's base modules; tests/test_layers.py).
STUDENT_PRELOAD = ("edgekit.runtime.model",)


_CTRL_C_IGNORED = False  # in a worker: the grader itself ignores Ctrl-C (started with `&` or nohup)


def _warm(grader: int, ctrl_c_ignored: bool = False) -> None:
    """Worker start-up: die with the grader, leave Ctrl-C to it, import the heavy modules once."""
    global _CTRL_C_IGNORED
    _die_with(grader)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides what Ctrl-C stops (grade_batch)
    _CTRL_C_IGNORED = ctrl_c_ignored
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per submission: workers already fill the cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import nbformat  # noqa: F401  (1-2 s to import: once per worker, not per submission)
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    import edgekit.grading.judge  # noqa: F401
    import edgekit.grading.kernel

    edgekit.grading.kernel.warm()  # IPython: imported once per worker, not per student process
    import edgekit.grading.notebook  # noqa: F401
    import edgekit.grading.student  # noqa: F401
    for name in STUDENT_PRELOAD:
        importlib.import_module(name)
    # what every judge imports after its fork: once here instead of once per submission
    import edgekit.grading.assemble  # noqa: F401
    import edgekit.grading.reference  # noqa: F401
    import edgekit.grading.replay  # noqa: F401
    import edgekit.grading.results  # noqa: F401
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401

    from .child import prime

    prime()  # the fence's allow-list, once per worker: its judges and student processes find it made


def _die_with(grader: int) -> None:
    """End this worker when the grader ends, even by ``kill -9``: otherwise it grades on, unseen.

    Linux: the kernel's parent-death signal (then a check, in case the grader died before it was
    set). Elsewhere: a thread polling the parent's pid. Judges and student processes chain the
    same way (grader -> worker -> judge -> student), each dying with its parent. The kernel's
    signal follows the *thread* that started the worker: grade_batch's caller, which outlives the pool.
    """
    from .sandbox import die_with_parent

    die_with_parent()
    if os.getppid() != grader:
        os._exit(1)
    if not sys.platform.startswith("linux"):
        def watch() -> None:
            while os.getppid() == grader:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="edgekit-watchdog").start()


def _run_task(task: Task) -> int:
    """In a warm worker: fork a judge for this one submission, so the worker never holds secrets."""
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            from .judge import grade
            from .sandbox import die_with_parent

            die_with_parent()  # the judge dies with its worker, its students with it
            if os.getppid() != worker:
                os._exit(1)
            if not _CTRL_C_IGNORED:  # as the grader has it (a background grader's judges ignore it too)
                signal.signal(signal.SIGINT, signal.default_int_handler)
            grade(task)
        except KeyboardInterrupt:  # Ctrl-C at the terminal: the grader stops the batch and says so
            code = 130
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


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


def expected_file(lab: Lab, out: Path, cases) -> Path:
    """Expected values from the reference, computed once per lab fingerprint (kept in ``OUT/.edgekit``)."""
    from .reference import expected_values

    path = out / ".edgekit" / f"expected-{lab.id}-{lab.fingerprint()}.json"
    if not path.is_file():
        atomic_write(path, json.dumps(expected_values(lab, cases)))
    return path


POLICIES = ("strict", "nbgrader")


def grade_batch(lab_path: str | Path, submissions: str | Path, out: str | Path, *, jobs: int | None = None,
                force: bool = False, scheduler: str | None = None, isolate: bool = True,
                hide: list[str | Path] = (), progress: bool = True, nbgrader_policy: str = "strict",
                unsafe_no_cgroups: bool = False) -> BatchResult:
    """Grade every submission; see the module docstring. Returns all records (old and new).

    ``nbgrader_policy`` decides nbgrader test cells whose two runs disagree (see
    :mod:`edgekit.grading.replay`): ``"strict"`` gives them no points, ``"nbgrader"`` the points
    the student's own notebook earns, as nbgrader would. ``unsafe_no_cgroups``: grade even where
    no cgroup can cap a submission's memory and processes (otherwise that refuses to start, with
    :class:`~edgekit.grading.cgroups.CgroupError`).

    Ctrl-C stops taking new submissions and abandons the ones in flight (their worker, judge and
    student processes are killed; running the same command again grades them), writes
    ``grades.csv`` with a ``not graded`` row for each, and raises :class:`Interrupted`.
    """
    if nbgrader_policy not in POLICIES:
        raise LabError(f"nbgrader policy {nbgrader_policy!r} is not one of {', '.join(POLICIES)}")
    if isolate and sys.platform.startswith("linux") and not unsafe_no_cgroups:
        from .cgroups import require

        require()
    lab = load_lab(lab_path)
    out, submissions = Path(out).resolve(), Path(submissions).resolve()
    csv_path = out / "grades.csv"
    if csv_path.exists() and not csv_path.is_file():
        raise LabError(f"{csv_path} exists and is not a file (a folder left by an earlier run?); "
                       f"remove it so grades.csv can be written")
    cases = lab.cases()  # fail early on a broken tests.py, before touching any submission
    roster = load_roster(submissions / "roster.csv", out / ".edgekit" / "roster.csv")  # for late and export
    keep_worksheet(submissions, out / ".edgekit")  # Moodle's grading worksheet, for `edgekit export`
    expected = expected_file(lab, out, cases)
    atomic_write(out / ".edgekit" / "batch.json",  # what `edgekit review OUT` grades, and from where
                 json.dumps({"lab": str(Path(lab_path).resolve()), "submissions": str(submissions)}))
    found = find_submissions(submissions, lab)
    fingerprint = lab.fingerprint()
    warnings = clean_debris(CLEANUP_BUDGET_S)
    scratch_root = Path(tempfile.mkdtemp(prefix=f"edgekit-grade-{os.getpid()}-")).resolve()
    # what student code must never see: this lab (and its siblings), other submissions, grades, scratch
    secret = [lab.root.resolve(), submissions, out, scratch_root, *[Path(h).resolve() for h in hide]]
    secret += _git_dirs(lab.root.resolve())  # the repository's history holds every solution ever committed
    if lab.format == "edgekit" and any((p / "lab.toml").is_file() for p in lab.root.parent.iterdir()
                                       if p.is_dir() and p != lab.root):
        secret.append(lab.root.parent.resolve())
    tasks, records, skipped = [], {}, []
    for student, sub in found.items():
        if sub.refused or sub.notebook is None:
            records[student] = _unmarked(lab, sub, fingerprint)
            if not sub.refused:  # a refused folder's name is an output file's: nothing is written for it
                write_student(out / student, records[student], lab)
            continue
        old = None if force else read_record(out / student)
        if (old and old.get("sha256") == submission_hash(sub.notebook) and old.get("fingerprint") == fingerprint
                and (lab.format != "nbgrader" or old.get("nbgrader_policy", "strict") == nbgrader_policy)):
            records[student] = old
            skipped.append(student)
            continue
        tasks.append(Task(lab=str(lab_path), submission=str(sub.notebook), student=student, out=str(out),
                          scratch=str(scratch_root / student), expected=str(expected), limits=lab.limits,
                          hide=[str(p) for p in secret], isolate=isolate, questions=len(lab.questions),
                          notes=list(sub.notes), nbgrader_policy=nbgrader_policy,
                          unsafe_no_cgroups=unsafe_no_cgroups))
    graded: list[str] = []
    interrupted = False
    try:
        if scheduler:
            from .remote import run_on_dask

            by_student = {t.student: t for t in tasks}
            for rec in run_on_dask(scheduler, tasks, _progress(progress, len(tasks))):
                task = by_student[rec["student"]]
                if task.notes:  # the remote judge did not know them: add them, and write the files again
                    rec["notes"] = task.notes + [n for n in rec.get("notes", []) if n not in task.notes]
                write_student(out / rec["student"], rec, lab)  # also keeps the full record for the instructor
                records[rec["student"]] = rec
                graded.append(rec["student"])
        else:
            _run_local(tasks, jobs or os.cpu_count() or 1, records, graded, progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:  # also on Ctrl-C or a crash: the grades of everything finished so far
        with interrupt.held():  # a second Ctrl-C must not cut grades.csv in half
            removal = remove_tree(scratch_root, CLEANUP_BUDGET_S)
            if not removal.complete:
                warnings.append(f"scratch folder: {removal}")
            not_graded = []
            for task in tasks:
                if task.student not in records:  # finished just before the interruption, or not at all
                    rec = read_record(out / task.student)
                    if rec is None or rec.get("sha256") != submission_hash(task.submission):
                        rec = _not_graded(lab, task.student)
                        not_graded.append(task.student)
                    records[task.student] = rec
            warnings += apply_roster(lab.late, roster, records,
                                     lambda rec: write_student(out / rec["student"], rec, lab))
            rows = [records[s] for s in sorted(records)]
            atomic_write(csv_path, grades_csv(rows, [q.id for q in lab.questions]))
    if (out / "gradebook.sqlite").is_file():  # manual grades given in `edgekit review`: back into every file
        from .gradebook import regenerate

        records = {r["student"]: r for r in regenerate(out, lab)}
    iso = {str(r["isolation"].get("level")) for r in records.values() if r.get("isolation")}
    result = BatchResult(lab.id, out, [records[s] for s in sorted(records)], graded, skipped, ",".join(sorted(iso)),
                         not_graded, warnings)
    if interrupted:
        raise Interrupted(result)
    return result


def _unmarked(lab: Lab, sub: Submission, fingerprint: str) -> dict:
    """The record of a folder with no notebook (``missing``, score 0) or a refused one (no score)."""
    if sub.refused:
        return {"student": sub.student, "lab": lab.id, "status": "refused", "score": None,
                "max_score": lab.max_score, "questions": {}, "notes": [sub.refused], "tests": []}
    return {"student": sub.student, "lab": lab.id, "status": "missing", "score": 0.0, "max_score": lab.max_score,
            "questions": {q.id: {"score": 0.0, "max_score": q.points} for q in lab.auto_questions},
            "notes": ["no .ipynb file in the submission folder"] + sub.notes, "tests": [], "fingerprint": fingerprint}


def _not_graded(lab: Lab, student: str) -> dict:
    """A row for a student the interrupted run did not reach: no score (an empty cell, not a 0)."""
    return {"student": student, "lab": lab.id, "status": "not graded", "score": None, "max_score": lab.max_score,
            "questions": {}, "notes": ["grading was interrupted before this submission was graded"], "tests": []}


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
    # ... nor of its environment: /proc/<pid>/environ keeps what a process started with (tokens);
    # the pool starts its workers as work is submitted, so both happen with a clean environment
    with clean_environ():
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=_warm,
                                   initargs=(os.getpid(), signal.getsignal(signal.SIGINT) is signal.SIG_IGN))
    try:
        with _progress(progress, len(tasks)) as advance, interrupt.noted() as pressed:
            with interrupt.held(reraise=True), clean_environ():  # workers start here: none half-started
                futures = {pool.submit(_run_task, t): t for t in tasks}
            for fut in _completed(futures, pressed):
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
    except BaseException:  # Ctrl-C (or a bug here): abandon the submissions in flight, now
        with interrupt.held():
            _kill_workers(pool)
        raise
    finally:
        with interrupt.held():
            pool.shutdown(wait=True, cancel_futures=True)


def _completed(futures, pressed: threading.Event):
    """The futures as they finish, as ``as_completed``; a Ctrl-C that Python dropped (see
    :mod:`.interrupt`) still stops the batch within half a second."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        if pressed.is_set():
            raise KeyboardInterrupt
        yield from done
    if pressed.is_set():  # pressed while the last one was being recorded
        raise KeyboardInterrupt


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's workers; each one's judge and student processes die with it (parent-death signal)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):  # Python 3.14 has pool.kill_workers()
        try:
            proc.kill()
        except (OSError, ValueError):
            pass


if __name__ == "__main__":  # pragma: no cover
    print(grade_batch(sys.argv[1], sys.argv[2], sys.argv[3]).scores)
