"""Grade one submission: fork fenced student processes, then — only then — read the secrets,
ask the student's processes for values, and compare them with the reference here.

Runs in a throw-away process forked per submission (see :mod:`edgekit.grading.batch`), which
writes ``results.json`` and ``feedback.html`` itself, atomically: a grading run killed midway
keeps every submission it finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import wire
from .lab import Limits
from .process import Remote, StudentError, StudentGone, StudentProcess

MAX_PROCESSES = 8  # student processes per submission: one, plus a restart per question (capped)
MAX_NOTEBOOK_BYTES = 64 * 2**20


@dataclass
class Task:
    """Everything a grading process needs, none of it secret (paths and limits only)."""

    lab: str
    submission: str
    student: str
    out: str
    scratch: str
    expected: str  # JSON file of expected values (inside the hidden out folder)
    limits: Limits = field(default_factory=Limits)
    hide: list[str] = field(default_factory=list)
    isolate: bool = True
    unsafe_no_cgroups: bool = False  # grade even where no cgroup caps the tree's memory and processes
    questions: int = 1  # how many: each gets a fresh process if an earlier question crashed or hung one


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def submission_hash(path: str | Path) -> str:
    """sha256 of a submission, or of its refusal (a symlink is never followed)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_NOTEBOOK_BYTES:
        return hashlib.sha256(f"not-a-notebook:{p.is_symlink()}:{os.readlink(p) if p.is_symlink() else ''}".encode()).hexdigest()
    return sha256_file(p)


def check_submission_file(path: str | Path) -> None:
    """A submission must be a regular file of sane size, not a symlink (to the lab, to /dev/zero...)."""
    from .lab import LabError

    p = Path(path)
    if p.is_symlink() or not p.is_file():
        raise LabError(f"{p.name} is not a regular file (a symlink or a device); submit the notebook file itself")
    if p.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise LabError(f"{p.name} is {p.stat().st_size / 2**20:.0f} MiB; notebooks over "
                       f"{MAX_NOTEBOOK_BYTES // 2**20} MiB are not graded (clear large outputs and save again)")


class StudentNamespace:
    """The student's globals, seen from the grader: data comes back as values, the rest as handles."""

    def __init__(self, proc: StudentProcess, deadline: float):
        self._proc, self._deadline = proc, deadline

    @staticmethod
    def _resolve(v: Any) -> Any:  # Obj/Ref arguments are resolved in the student's process
        return v

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._proc.request({"op": "get", "name": name}, self._deadline)


def student_names(source: str, ns: StudentNamespace) -> dict[str, Any]:
    """The names an answer cell defines, as the student's values (functions become handles)."""
    import ast

    from .runcells import plain_python

    try:
        tree = ast.parse(plain_python(source))
    except SyntaxError:
        return {}
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    found = {}
    for name in names:
        try:
            found[name] = getattr(ns, name)
        except StudentError:
            pass  # undefined in the submission: a test using it fails with NameError, which says so
    return found


def _case_verdict(case, ns: StudentNamespace, want: Any) -> tuple[bool, str]:
    try:
        got = case.target(ns)
    except StudentError as exc:
        return False, f"{case.describe()} raised {exc}"
    except StudentGone:
        raise
    except AssertionError as exc:  # an nbgrader test cell failed
        return False, f"assertion failed: {exc}" if str(exc) else "an assertion in the test cell failed"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if isinstance(got, Remote):
        return False, f"{case.describe()} returned a {got.type_name}, not data (numbers, arrays, strings, lists)"
    try:
        msg = case.compare(got, want)
    except Exception as exc:
        msg = f"could not compare the answer ({type(exc).__name__}: {exc})"
    return (msg is None), ("ok" if msg is None else f"{case.describe()}: {msg}")


def start_students(task: Task) -> list[StudentProcess]:
    """Fork the fenced student processes (one, plus spares for restarts) while memory is clean."""
    Path(task.scratch).mkdir(parents=True, exist_ok=True)
    hide = [Path(p) for p in task.hide]
    if task.isolate:  # a disk_mb tmpfs on scratch, in this judge's own mount namespace (sandbox.private_scratch)
        from .sandbox import private_scratch

        private_scratch(Path(task.scratch).resolve(), task.limits.disk_mb)
    need_cgroup = task.isolate and not task.unsafe_no_cgroups
    procs = [StudentProcess.start(Path(task.scratch).resolve(), hide, task.limits, task.isolate, need_cgroup)
             for _ in range(min(1 + task.questions, MAX_PROCESSES))]
    return [p.drain() for p in procs]  # output threads only once no more forks follow


def grade(task: Task) -> dict:
    """Grade one submission and return its record (also written to ``out/<student>/``)."""
    return grade_with(start_students(task), task)


def grade_with(spares: list[StudentProcess], task: Task) -> dict:
    t0 = time.perf_counter()
    scratch, limits = Path(task.scratch), task.limits
    deadline = time.monotonic() + limits.wall_s
    # from here on this process reads the secrets: the lab's notebook, tests and expected values
    from .lab import LabError, load_lab
    from .notebook import read_notebook, splice

    record: dict[str, Any] = {"student": task.student, "sha256": submission_hash(task.submission),
                              "status": "graded", "notes": [], "cells": [], "tests": [], "output": ""}
    used: list[StudentProcess] = []
    lab = None
    try:
        lab = load_lab(task.lab)
        record.update(lab=lab.id, fingerprint=lab.fingerprint(), max_score=lab.max_score)
        cases = lab.cases()
        expected = json.loads(Path(task.expected).read_text())
        for rel in lab.files:
            dest = scratch / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab.root / rel, dest)
        try:
            check_submission_file(task.submission)
            program = splice(lab, read_notebook(task.submission))
            record["notes"] += program.notes
        except LabError as exc:
            program = None
            record.update(status="unreadable", notes=[str(exc)])
        proc, broke = None, None  # broke: the question whose case killed or hung the process
        for case in cases:
            res = {"question": case.question, "name": case.key, "weight": case.weight,
                   "visibility": "visible" if case.public else "after_due_date"}
            if program is not None and case.question == broke:
                res.update(passed=False, output="not run: your code crashed or hung on an earlier case of this question")
                record["tests"].append(res)
                continue
            if proc is None and program is not None and spares:
                proc = spares.pop(0)
                used.append(proc)
                try:
                    record["isolation"] = proc.fenced(deadline)
                    cells = proc.run_program(program.cells, deadline)
                    record["cells"] = record["cells"] or [c for c in cells if c[1]]
                except StudentGone as exc:
                    record["notes"].append(f"running the notebook: {exc}")
                    proc = None
            if program is None:
                res.update(passed=False, output="the notebook could not be read")
            elif proc is None:
                res.update(passed=False, output="not run: the notebook's process had to be restarted too often")
            else:
                call_deadline = min(deadline, time.monotonic() + limits.call_s)
                try:
                    ok, msg = _case_verdict(case, StudentNamespace(proc, call_deadline), wire.decode(expected[case.key]))
                except StudentGone as exc:
                    ok, msg = False, f"{case.describe()}: {exc}"
                    proc.kill()
                    proc, broke = None, case.question
                res.update(passed=ok, output=msg)
            record["tests"].append(res)
    except Exception as exc:  # a grader-side failure: record it, never lose the batch
        record.update(status="error", notes=record["notes"] + [f"grader error: {exc}", traceback.format_exc()[-2000:]])
    finally:
        outputs = [p.close() for p in used + spares]
        text, limit = "\n".join(t for t, _ in outputs if t), limits.output_kb * 1024
        dropped = sum(n for _, n in outputs) + max(0, len(text) - limit)  # several processes: bound the total
        record["output"] = text[:limit] + (f"\n[... {dropped:,} more bytes of output not kept]\n" if dropped else "")
        shutil.rmtree(scratch, ignore_errors=True)
        if task.isolate:  # the judge's scratch tmpfs, so that its caller can remove the folder
            from .sandbox import release_scratch

            release_scratch(scratch)
    _score(record, lab)
    record["execution_time"] = round(time.perf_counter() - t0, 3)
    from .results import write_student

    write_student(Path(task.out) / task.student, record, lab)
    return record


def _score(record: dict, lab) -> None:
    """Question score = points x (weight passed / weight total); each test gets its share."""
    if lab is None:
        record.update(score=0.0, questions={})
        return
    totals: dict[str, float] = {}
    for t in record["tests"]:
        totals[t["question"]] = totals.get(t["question"], 0.0) + t["weight"]
    questions = {q.id: {"score": 0.0, "max_score": q.points} for q in lab.auto_questions}
    passed: dict[str, float] = {}
    for t in record["tests"]:
        share = lab.question(t["question"]).points * t["weight"] / totals[t["question"]]
        t["max_score"] = round(share, 4)
        t["score"] = round(share, 4) if t["passed"] else 0.0
        t["status"] = "passed" if t["passed"] else "failed"
        passed[t["question"]] = passed.get(t["question"], 0.0) + (t["weight"] if t["passed"] else 0.0)
    for qid, q in questions.items():  # from the weights, not the rounded shares: full marks sum exactly
        q["score"] = round(q["max_score"] * passed.get(qid, 0.0) / totals[qid], 4) if qid in totals else 0.0
        mine = [t for t in record["tests"] if t["question"] == qid]
        if mine:  # the last test absorbs the rounding, so tests add up to their question exactly
            mine[-1]["max_score"] = round(q["max_score"] - sum(t["max_score"] for t in mine[:-1]), 4)
            won = [t for t in mine if t["passed"]]
            if won:
                won[-1]["score"] = round(q["score"] - sum(t["score"] for t in won[:-1]), 4)
    record["questions"] = questions
    record["score"] = round(sum(q["score"] for q in questions.values()), 4)


