"""The instructor's grades of manual (rubric) questions, ``OUT/gradebook.sqlite``, and the grade
files regenerated from it.

Each edit is one transaction in a SQLite database in WAL mode: several TAs (review pages,
threads, processes) can save at once and no edit is lost — a writer that finds the database
busy waits (``busy_timeout``) instead of failing.

:func:`regenerate` rewrites ``grades.csv``, each student's ``results.json`` and ``feedback.html``
from the autograder's records (``OUT/.edgekit/records/``) and the gradebook. A student's score is
``(autograded points + manual points) * (1 - late fraction)``, out of every question's points,
manual ones included. A manual question not graded yet has an empty ``grades.csv`` cell and
reads "not graded yet" in the feedback. Regenerating is idempotent: it starts from the
autograder's own score (kept in the record as ``auto_score``), never from a previous total.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._io import atomic_write
from .lab import Lab, LabError, Question, load_lab
from .results import autograded, grades_csv, write_student

BUSY_MS = 30_000  # how long a writer waits for another one before giving up
SCHEMA = """
CREATE TABLE IF NOT EXISTS scores(student TEXT, question TEXT, points REAL, comment TEXT, grader TEXT,
    updated_at TEXT, PRIMARY KEY(student, question));
CREATE TABLE IF NOT EXISTS flags(student TEXT, question TEXT, grader TEXT, updated_at TEXT,
    PRIMARY KEY(student, question));
"""


@dataclass(frozen=True)
class Score:
    """One manual grade: points, the TA's comment (shown to the student), who gave it and when."""

    points: float
    comment: str = ""
    grader: str = ""
    updated_at: str = ""


def database(out: str | Path) -> Path:
    return Path(out) / "gradebook.sqlite"


def records_dir(out: str | Path) -> Path:
    return Path(out) / ".edgekit" / "records"


def students(out: str | Path) -> list[str]:
    """The students the autograder wrote a record for, sorted."""
    return sorted(p.stem for p in records_dir(out).glob("*.json"))


def connect(out: str | Path) -> sqlite3.Connection:
    """The gradebook of ``out`` (created when absent), in WAL mode, autocommit: use :func:`transaction`."""
    out = Path(out)
    if not records_dir(out).is_dir():
        raise LabError(f"{out} is not a grades folder (no {records_dir(out)}); grade the submissions first: "
                       f"edgekit grade LAB SUBMISSIONS --out {out}")
    con = sqlite3.connect(database(out), timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(SCHEMA)
    return con


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (take the write lock now, waiting for it) ... ``COMMIT``, or ``ROLLBACK`` on error."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _lab(lab: Lab | str | Path) -> Lab:
    return lab if isinstance(lab, Lab) else load_lab(lab)


def manual_question(lab: Lab, qid: str) -> Question:
    q = lab.question(qid)
    if not q.manual:
        manual = ", ".join(q.id for q in lab.questions if q.manual) or "none"
        raise LabError(f"question {qid} of {lab.id} is autograded; only its manual questions ({manual}) "
                       "take a score in the gradebook")
    return q


def _known(out: Path, student: str) -> None:
    if not (records_dir(out) / f"{student}.json").is_file():
        known = students(out)
        raise LabError(f"no graded submission of student {student!r} in {out} (students: "
                       f"{', '.join(known[:5])}{', ...' if len(known) > 5 else ''}); grade it first with edgekit grade")


def set_score(out: str | Path, student: str, question: str, points: float | None, comment: str = "",
              grader: str = "", *, lab: Lab | str | Path) -> Score | None:
    """Record (or, with ``points=None``, remove) a manual grade, in one transaction; returns it."""
    out, lab = Path(out), _lab(lab)
    q = manual_question(lab, question)
    _known(out, student)
    if points is not None:
        try:
            points = float(points)
        except (TypeError, ValueError):
            raise LabError(f"points for {question} must be a number from 0 to {q.points:g}; got {points!r}") from None
        if not 0 <= points <= q.points:  # also refuses NaN
            raise LabError(f"{question} is worth 0 to {q.points:g} points; got {points:g}. Give a score in that "
                           "range (a bonus belongs in the question's points in lab.toml)")
    score = None if points is None else Score(points, str(comment or ""), str(grader or ""), _now())
    with closing(connect(out)) as con, transaction(con):
        if score is None:
            con.execute("DELETE FROM scores WHERE student = ? AND question = ?", (student, question))
        else:
            con.execute("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(student, question) DO UPDATE SET "
                        "points = excluded.points, comment = excluded.comment, grader = excluded.grader, "
                        "updated_at = excluded.updated_at", (student, question, score.points, score.comment,
                                                             score.grader, score.updated_at))
    return score


def set_flag(out: str | Path, student: str, question: str, flagged: bool = True, grader: str = "") -> None:
    """Flag a submission's answer to come back to (or clear the flag); a flag never changes a grade."""
    _known(Path(out), student)
    with closing(connect(out)) as con, transaction(con):
        if flagged:
            con.execute("INSERT OR REPLACE INTO flags VALUES (?, ?, ?, ?)", (student, question, grader, _now()))
        else:
            con.execute("DELETE FROM flags WHERE student = ? AND question = ?", (student, question))


def _scores(con: sqlite3.Connection) -> dict[str, dict[str, Score]]:
    found: dict[str, dict[str, Score]] = {}
    for student, question, *rest in con.execute(
            "SELECT student, question, points, comment, grader, updated_at FROM scores"):
        found.setdefault(student, {})[question] = Score(*rest)
    return found


def manual_scores(out: str | Path) -> dict[str, dict[str, Score]]:
    """``{student: {question: Score}}``; empty when no gradebook exists yet."""
    if not database(out).is_file():
        return {}
    with closing(connect(out)) as con:
        return _scores(con)


def flags(out: str | Path) -> set[tuple[str, str]]:
    """``{(student, question)}`` flagged."""
    if not database(out).is_file():
        return set()
    with closing(connect(out)) as con:
        return set(con.execute("SELECT student, question FROM flags"))


def batch_info(out: Path) -> dict:
    """What ``edgekit grade`` wrote about its run in ``OUT/.edgekit/batch.json`` (lab, submissions), or {}."""
    try:
        return json.loads((Path(out) / ".edgekit" / "batch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def combine(record: dict, lab: Lab, manual: dict[str, Score]) -> dict:
    """The record with the manual grades and the late penalty in its score (see the module docstring)."""
    rec = dict(record)
    auto = rec["auto_score"] = autograded(rec)  # the autograder's exact total, kept across runs
    ids = {q.id for q in lab.questions if q.manual}
    questions = {k: v for k, v in rec.get("questions", {}).items() if k not in ids}
    for q in lab.questions:
        if q.manual and q.id in manual:
            s = manual[q.id]
            questions[q.id] = {"score": s.points, "max_score": q.points, "comment": s.comment, "grader": s.grader}
    rec["questions"] = questions
    rec["max_score"] = float(sum(q.points for q in lab.questions))
    if auto is not None:  # refused or not graded: no score at all (an empty cell), manual grades or not
        late = (rec.get("late") or {}).get("fraction", 0.0) or 0.0
        total = auto + sum(s.points for qid, s in manual.items() if qid in ids)
        rec["score"] = round(total * (1.0 - late), 4)
    return rec


def regenerate(out: str | Path, lab: Lab | str | Path, students: Iterable[str] | None = None) -> list[dict]:
    """Rewrite ``grades.csv`` and the files of ``students`` (default: all) from records + gradebook.

    Runs under the gradebook's write lock, so regenerations queue up and the last one written has
    read every edit committed before it. Returns every student's record, as written.
    """
    out, lab = Path(out), _lab(lab)
    only = None if students is None else set(students)
    with closing(connect(out)) as con, transaction(con):
        manual = _scores(con)
        records = []
        for p in sorted(records_dir(out).glob("*.json")):
            rec = combine(json.loads(p.read_text(encoding="utf-8")), lab, manual.get(p.stem, {}))
            if only is None or p.stem in only:
                write_student(out / p.stem, rec, lab)
            records.append(rec)
        atomic_write(out / "grades.csv", grades_csv(records, [q.id for q in lab.questions]))
    return records
