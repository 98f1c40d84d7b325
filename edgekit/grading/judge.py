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

from .._io import file_sha256
from . import wire
from .lab import Limits
from .cleanup import remove_tree
from .errors import StudentGone
from .process import CellStopped, Remote, StudentProcess, submission_group

# student processes per submission: one, plus spares for restarts, forked before the judge reads any
# secret. A spare waits unfenced until a restart needs it (a fork, about 2 ms of the judge's time): one
# restart per question, at most 3 spares — a notebook that hangs or dies more often loses its remaining questions.
MAX_PROCESSES = 4
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
    nbgrader_policy: str = "strict"  # nbgrader test cells the replay disputes: "strict" (0) or "nbgrader"
    notes: list[str] = field(default_factory=list)  # from the batch: files ignored in the submission folder


def submission_hash(path: str | Path) -> str:
    """sha256 of a submission, or of its refusal (a symlink is never followed)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_NOTEBOOK_BYTES:
        return hashlib.sha256(f"not-a-notebook:{p.is_symlink()}:{os.readlink(p) if p.is_symlink() else ''}".encode()).hexdigest()
    return file_sha256(p)


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


def _case_verdict(case, ns: StudentNamespace, want: Any, owner: dict[str, str] | None = None) -> tuple[bool, str]:
    from .feedback import compared, raised

    try:
        got = case.target(ns)
    except StudentGone:
        raise
    except Exception as exc:  # the student's error, rebuilt here (see errors.py), or a case's own
        return False, raised(case.describe(), exc, case.question, owner, target=getattr(case.target, "name", None))
    if isinstance(got, Remote):
        return False, f"{case.describe()} returned a {got.type_name}, not data (numbers, arrays, strings, lists)"
    msg = compared(case.target, case.compare, got, want)  # the same words as the student's check()
    return (msg is None), ("ok" if msg is None else msg)


def start_students(task: Task) -> list[StudentProcess]:
    """Fork the fenced student processes (one, plus spares for restarts) while memory is clean."""
    Path(task.scratch).mkdir(parents=True, exist_ok=True)
    hide = [Path(p) for p in task.hide]
    if task.isolate:  # a disk_mb tmpfs on scratch, in this judge's own mount namespace (sandbox.private_scratch)
        from .sandbox import private_scratch

        private_scratch(Path(task.scratch).resolve(), task.limits.disk_mb)
    need_cgroup = task.isolate and not task.unsafe_no_cgroups
    # one cgroup for the submission, shared by its processes: a spare joins it when a restart wakes it
    group = submission_group(task.limits, task.isolate, need_cgroup)
    # the first fences itself at once, while the judge reads the lab; the spares only when a restart needs them
    procs = [StudentProcess.start(Path(task.scratch).resolve(), hide, task.limits, task.isolate, need_cgroup,
                                  group=group, idle=i > 0) for i in range(min(1 + task.questions, MAX_PROCESSES))]
    return [p.drain() for p in procs]  # output threads only once no more forks follow


def grade(task: Task) -> dict:
    """Grade one submission and return its record (also written to ``out/<student>/``)."""
    return grade_with(start_students(task), task)


class Runner:
    """The student's notebook in a fenced process, restarted from a spare when it dies or hangs.

    A top-level cell that hangs or ends the process is skipped in the next start, so it costs
    only the questions that need it; the record says which cell.
    """

    def __init__(self, spares: list[StudentProcess], used: list[StudentProcess], cells, limits: Limits,
                 deadline: float, record: dict):
        self.spares, self.used, self.cells, self.limits = spares, used, cells, limits
        self.deadline, self.record = deadline, record
        self.skip: set[int] = set()
        self.outcomes: dict[int, dict] = {}  # cell index -> the first real run's "done" message
        self.died: list[int] = []  # cells that ended the process (a Jupyter kernel would have died there)
        self.proc: StudentProcess | None = None

    def start(self, probes: set[int] = frozenset(), on_probe=None) -> StudentProcess | None:
        payload = [{"label": c.label, "source": c.source} for c in self.cells]
        while self.spares:
            proc = self.proc = self.spares.pop(0)
            self.used.append(proc)
            try:
                self.record["isolation"] = proc.fenced(self.deadline)
                done = proc.run_program(payload, self.deadline, self.limits.cell_s, self.skip, probes, on_probe)
                for i, d in done.items():
                    self.outcomes.setdefault(i, d)
                return proc
            except CellStopped as exc:
                proc.kill()
                self.proc = None
                if exc.index is None:
                    self.record["notes"].append(f"running the notebook: {exc}")
                    return None
                self.skip.add(exc.index)
                if not exc.timed_out:
                    self.died.append(exc.index)
                self.outcomes.setdefault(exc.index, {"ok": False, "ename": "Stopped", "evalue": str(exc),
                                                     "mro": ["StudentError"], "where": [self.cells[exc.index].label]})
                self.record["notes"].append(f"{self.cells[exc.index].label}: {exc}; the notebook was run again "
                                            "without it, so only what needs that cell is lost")
            except StudentGone as exc:
                self.record["notes"].append(f"running the notebook: {exc}")
                self.proc = None
                return None
        self.proc = None
        return None

    def errors(self) -> list[list[str]]:
        from .replay import describe_done

        return [[self.cells[i].label, describe_done(d)] for i, d in sorted(self.outcomes.items())
                if not d.get("ok") and self.cells[i].kind != "test"]


def _grade_cases(runner: Runner, cases, expected: dict, limits: Limits, deadline: float) -> list[dict]:
    """Native labs: each case asks the student's process for a value; the grader compares it."""
    from .feedback import owners

    tests = []
    proc, broke, started = None, None, False
    owner = owners((c.question, c.target) for c in cases)
    for case in cases:
        res = {"question": case.question, "name": case.key, "weight": case.weight,
               "visibility": "visible" if case.public else "after_due_date"}
        if case.question == broke:
            res.update(passed=False, output="not run: your code crashed or hung on an earlier case of this question")
            tests.append(res)
            continue
        if proc is None and (not started or runner.spares):
            proc, started = runner.start(), True
        if proc is None:
            res.update(passed=False, output="not run: the notebook's process had to be restarted too often")
        else:
            call_deadline = min(deadline, time.monotonic() + limits.call_s)
            try:
                ok, msg = _case_verdict(case, StudentNamespace(proc, call_deadline), wire.decode(expected[case.key]), owner)
            except StudentGone as exc:
                ok, msg = False, f"{case.describe()}: {exc}"
                proc.kill()
                proc, broke = None, case.question
            res.update(passed=ok, output=msg)
        tests.append(res)
    return tests


def _grade_test_cells(runner: Runner, lab, policy: str, limits: Limits, deadline: float) -> list[dict]:
    """nbgrader labs: each test cell runs for real in the notebook and is replayed in the grader."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edgekit-replay-") as tmp:
        workdir = Path(tmp)  # the replay's working folder: the lab's own files, never the student's scratch
        for rel in lab.files:
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab.root / rel, workdir / rel)
        return _decide_test_cells(runner, lab, policy, limits, deadline, workdir)


def _decide_test_cells(runner: Runner, lab, policy: str, limits: Limits, deadline: float, workdir: Path) -> list[dict]:
    from .replay import Replay, verdict

    cells = runner.cells
    tests = [i for i, c in enumerate(cells) if c.kind == "test"]
    replay = Replay(cells, trusted=lab.root, workdir=workdir)
    decided: dict[int, tuple[bool, str]] = {}

    def on_probe(index: int) -> None:
        if index not in decided:
            decided[index] = replay.decide(runner.proc, index, min(deadline, time.monotonic() + limits.call_s))

    while runner.start(probes={i for i in tests if i not in decided and i not in runner.skip}, on_probe=on_probe) \
            is None and runner.spares and runner.skip:
        pass  # a cell hung or ended the process: run again without it
    died = ({"ok": False, "ename": "DeadKernel", "mro": ["DeadKernel", "Exception"], "where": [],
             "evalue": f"your code ended the notebook's process in {cells[runner.died[0]].label}; nbgrader gives no "
                       "points to a notebook whose kernel dies"} if runner.died else None)
    out = []
    for i in tests:
        o = verdict(decided.get(i), died or runner.outcomes.get(i))
        out.append({"question": cells[i].question, "name": cells[i].question, "weight": 1.0,
                    "visibility": "visible", "passed": o.points_share(policy), "output": o.message,
                    "disputed": o.disputed, "verdicts": {"grader": o.passed, "notebook": o.student_passed}})
    return out


def grade_with(spares: list[StudentProcess], task: Task) -> dict:
    t0 = time.perf_counter()
    scratch, limits = Path(task.scratch), task.limits
    deadline = time.monotonic() + limits.wall_s
    # from here on this process reads the secrets: the lab's notebook, tests and expected values
    from .assemble import assemble
    from .lab import LabError, load_lab
    from .notebook import read_notebook
    from .reference import AUTOTEST

    record: dict[str, Any] = {"student": task.student, "sha256": submission_hash(task.submission),
                              "status": "graded", "notes": list(task.notes), "cells": [], "tests": [], "output": ""}
    used: list[StudentProcess] = []
    lab = None
    try:
        lab = load_lab(task.lab)
        record.update(lab=lab.id, fingerprint=lab.fingerprint(), max_score=lab.max_score)
        cases = lab.cases() if lab.format == "edgekit" else []
        expected = json.loads(Path(task.expected).read_text())
        source = lab.notebook()
        for i, text in (expected.pop(AUTOTEST, None) or {}).items():  # nbgrader's expanded AUTOTEST cells
            source.cells[int(i)].source = text
        for rel in lab.files:
            dest = scratch / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab.root / rel, dest)
        try:
            check_submission_file(task.submission)
            submitted = read_notebook(task.submission)
            program = assemble(source, submitted, lab.format)
            record["notes"] += program.notes
            if lab.format == "nbgrader" and not any((c.get("metadata") or {}).get("nbgrader") for c in submitted.cells):
                program = None  # nbgrader finds none of its cells in such a notebook and gives it nothing
                record["notes"].append("your notebook has lost its nbgrader cell metadata (an editor that drops it, "
                                       "or answers copied into a new notebook): nbgrader grades nothing in it, and "
                                       "neither does this grader; put your answers into the released notebook")
        except LabError as exc:
            program = None
            record.update(status="unreadable", notes=record["notes"] + [str(exc)])
        if program is None:
            names = [(c.question, c.key, c.weight, c.public) for c in cases] or \
                    [(q.id, q.id, 1.0, True) for q in lab.auto_questions]
            why = "the notebook could not be read" if record["status"] == "unreadable" else record["notes"][-1]
            record["tests"] = [{"question": q, "name": n, "weight": w, "passed": False,
                                "visibility": "visible" if pub else "after_due_date", "output": why}
                               for q, n, w, pub in names]
        else:
            runner = Runner(spares, used, program.runnable, limits, deadline, record)
            if lab.format == "nbgrader":
                record["nbgrader_policy"] = task.nbgrader_policy
                record["tests"] = _grade_test_cells(runner, lab, task.nbgrader_policy, limits, deadline)
            else:
                record["tests"] = _grade_cases(runner, cases, expected, limits, deadline)
            record["cells"] = runner.errors()
            record["disputed"] = sum(bool(t.get("disputed")) for t in record["tests"])
    except Exception as exc:  # a grader-side failure: record it, never lose the batch
        record.update(status="error", notes=record["notes"] + [f"grader error: {exc}", traceback.format_exc()[-2000:]])
    finally:
        for p in used + spares:
            p.kill(wait=False)  # all at once: they end side by side, then close() waits for each
        outputs = [p.close() for p in used + spares]
        for group in {id(p.group): p.group for p in used + spares if p.group is not None}.values():
            group.remove()  # the submission's cgroup, shared by its processes (start_students)
        text, limit = "\n".join(t for t, _ in outputs if t), limits.output_kb * 1024
        dropped = sum(n for _, n in outputs) + max(0, len(text) - limit)  # several processes: bound the total
        record["output"] = text[:limit] + (f"\n[... {dropped:,} more bytes of output not kept]\n" if dropped else "")
        if task.isolate:  # the judge's scratch tmpfs goes first (its contents with it), then the folder
            from .sandbox import release_scratch

            release_scratch(scratch)
        left = remove_tree(scratch)  # never recursion: a student can leave a 5000-level chain behind
        if left.problems:
            record["notes"].append(f"the scratch folder could not be fully removed: {left.problems[0]}")
    _score(record, lab)
    record["execution_time"] = round(time.perf_counter() - t0, 3)
    from .results import write_student

    write_student(Path(task.out) / task.student, record, lab)
    return record


def _score(record: dict, lab) -> None:
    """Question score = points x (weight passed / weight total); each test gets its share.

    >>> from edgekit.grading.lab import Lab, Question
    >>> lab = Lab("x", "x", None, None, [Question("q1", "q1", 17), Question("q2", "q2", 17)])
    >>> rec = {"tests": [{"question": q, "weight": 1.0, "passed": p} for q, p in
    ...                  [("q1", True), ("q1", True), ("q1", False), ("q2", True), ("q2", True), ("q2", False)]]}
    >>> _score(rec, lab); rec["score"], rec["questions"]["q1"]["score"]
    (22.6667, 11.3333)
    """
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
    exact = 0.0  # the total from unrounded question scores: round once, at the end
    for qid, q in questions.items():  # from the weights, not the rounded shares: full marks sum exactly
        value = q["max_score"] * passed.get(qid, 0.0) / totals[qid] if qid in totals else 0.0
        exact += value
        q["score"] = round(value, 4)
        mine = [t for t in record["tests"] if t["question"] == qid]
        if mine:  # the last test absorbs the rounding, so tests add up to their question exactly
            mine[-1]["max_score"] = round(q["max_score"] - sum(t["max_score"] for t in mine[:-1]), 4)
            won = [t for t in mine if t["passed"]]
            if won:
                won[-1]["score"] = round(q["score"] - sum(t["score"] for t in won[:-1]), 4)
    record["questions"] = questions
    record["score"] = round(exact, 4)


