"""Grades as files: Gradescope ``results.json`` and ``feedback.html`` per student, ``grades.csv`` per batch;
and :class:`BatchResult`, what a batch did.

Every file is written to a temporary name and renamed into place, so a reader — or a grading run
resumed after a kill — sees either the old file or the new one, never half of one.

What students see follows the lab's ``feedback`` policy: under ``"summary"`` (the default) a
hidden case shows its name and pass/fail only — its message holds its inputs and expected values,
which would let a class collect the hidden tests. ``feedback.html`` and ``results.json`` (all of
it: Gradescope shows each test's ``output`` after the due date, and the file may be handed to
students) carry the student's view; the full record is kept for the instructor alone in
``OUT/.edgekit/records/<student>.json``, which a resumed run reads back.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write

HIDDEN_FAILED = "failed (a hidden test: its inputs and expected values are not shown)"


def student_view(record: dict, policy: str = "summary") -> dict:
    """The record as a student may see it under the lab's ``feedback`` policy ("summary" or "full")."""
    if policy == "full":
        return record
    tests = []
    for t in record.get("tests", []):
        if t.get("visibility") != "visible":  # a hidden case
            passed = t.get("status", "passed" if t.get("passed") else "failed") == "passed"
            t = {**t, "output": "passed" if passed else HIDDEN_FAILED}
        tests.append(t)
    return {**record, "tests": tests}


def autograded(record: dict) -> float | None:
    """The autograder's own total, before rubric points and the late penalty: ``auto_score`` once the
    gradebook has combined the record, else the late penalty's ``score_before``, else ``score``."""
    if "auto_score" in record:
        return record["auto_score"]
    return (record.get("late") or {}).get("score_before", record.get("score"))


def instructor_file(student_dir: Path) -> Path:
    """Where the full record of a student is kept, beside (not inside) the student's own folder."""
    return student_dir.parent / ".edgekit" / "records" / f"{student_dir.name}.json"


def gradescope(record: dict) -> dict:
    """The Gradescope autograder format; our full record rides along in ``extra_data``."""
    tests = [{"name": t["name"], "number": str(i + 1), "score": t.get("score", 0.0),
              "max_score": t.get("max_score", 0.0), "status": t.get("status", "failed"),
              "output": t.get("output", ""), "tags": [t["question"]], "visibility": t["visibility"],
              "extra_data": {k: t[k] for k in ("question", "weight", "disputed", "verdicts") if k in t}}
             for i, t in enumerate(record.get("tests", []))]
    notes = "\n".join(record.get("notes", []))
    return {"score": record.get("score", 0.0), "execution_time": record.get("execution_time", 0.0),
            "output": notes or f"graded by edgekit: {record.get('status')}", "output_format": "text",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {k: v for k, v in record.items() if k != "tests"}}


def read_record(student_dir: Path) -> dict | None:
    """The record a previous run wrote (the instructor's full copy when it matches), or None."""
    try:
        res = json.loads((student_dir / "results.json").read_text(encoding="utf-8"))
        record = res["extra_data"] | {"tests": res["tests"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        full = json.loads(instructor_file(student_dir).read_text(encoding="utf-8"))
        if isinstance(full, dict) and full.get("sha256") == record.get("sha256") and \
                full.get("fingerprint") == record.get("fingerprint"):
            return full
    except (OSError, ValueError):
        pass
    return record


def feedback_html(record: dict, lab=None) -> str:
    e = html.escape
    title = f"{record.get('lab', 'lab')} — {record['student']}"
    rows = []
    for t in record.get("tests", []):
        mark = "✔" if t.get("status") == "passed" else "✘"
        if t.get("disputed") or (t.get("extra_data") or {}).get("disputed"):
            mark += " disputed"  # the notebook's own run and the grader's replay of this test cell disagree
        rows.append(f"<tr class='{t.get('status')}'><td>{mark}</td><td>{e(t['name'])}</td>"
                    f"<td>{t.get('score', 0):g} / {t.get('max_score', 0):g}</td><td><pre>{e(t.get('output', ''))}</pre></td></tr>")
    qs = record.get("questions", {})
    qrows = "".join(f"<tr><td>{e(q)}</td><td>{v['score']:g} / {v['max_score']:g}</td><td>{e(v.get('comment', ''))}</td></tr>"
                    for q, v in qs.items())
    qrows += "".join(f"<tr><td>{e(q.id)}</td><td>not graded yet / {q.points:g}</td><td>graded by your instructor</td></tr>"
                     for q in getattr(lab, "questions", []) if q.manual and q.id not in qs)
    late = (record.get("late") or {}).get("note")
    notes = "".join(f"<li>{e(n)}</li>" for n in record.get("notes", []) if not n.startswith("Traceback") and n != late)
    cells = "".join(f"<li>{e(label)}<pre>{e(err)}</pre></li>" for label, err in record.get("cells", []))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}}td{{vertical-align:top;padding:2px 8px}}
tr.passed td:first-child{{color:#080}}tr.failed td:first-child{{color:#b00}}pre{{white-space:pre-wrap;margin:0}}</style></head>
<body><h1>{e(title)}</h1><p><b>Score: {record.get('score', 0):g} / {record.get('max_score', 0):g}</b>
 — status {e(str(record.get('status')))}, graded in {record.get('execution_time', 0):.2f} s</p>
{f'<p class="late">{e(late)}</p>' if late else ''}
<h2>Questions</h2><table>{qrows}</table>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
{f'<h2>Cells that raised an error</h2><ul>{cells}</ul>' if cells else ''}
<h2>Tests</h2><table>{''.join(rows)}</table>
<h2>Your output (truncated)</h2><pre>{e(record.get('output', ''))}</pre></body></html>
"""


def write_student(student_dir: Path, record: dict, lab=None) -> None:
    """The student's files under the lab's feedback policy (no lab: "summary"), and the instructor's copy."""
    view = student_view(record, getattr(lab, "feedback", "summary"))
    atomic_write(student_dir / "feedback.html", feedback_html(view, lab))
    atomic_write(instructor_file(student_dir), json.dumps(record, indent=1, default=str))
    atomic_write(student_dir / "results.json", json.dumps(gradescope(view), indent=1, default=str))  # last: marks done


def grades_csv(records: list[dict], questions: list[str]) -> str:
    """One row per student: student, score, max_score, one column per question, status.

    A student with no grade (status ``refused`` or ``not graded``) has empty score cells, not 0:
    gradebook imports leave an empty cell alone, where a 0 would be recorded as a grade.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    fidelity = any(r.get("disputed") for r in records)  # only then: nbgrader test cells the replay disputed
    w.writerow(["student", "score", "max_score", *questions, "status"] + (["fidelity"] if fidelity else []))
    for r in sorted(records, key=lambda r: r["student"]):
        qs = r.get("questions", {})
        score = r.get("score", 0)  # None: not graded (refused, interrupted): an empty cell, which imports skip
        w.writerow([r["student"], "" if score is None else f"{score:g}", f"{r.get('max_score', 0):g}",
                    *[f"{qs[q]['score']:g}" if q in qs else "" for q in questions], r.get("status", "")]
                   + ([f"{r['disputed']} disputed" if r.get("disputed") else ""] if fidelity else []))
    return buf.getvalue()


def summary_rows(records: list[dict], questions: list[str]) -> list[tuple[str, Any]]:
    if not records:
        return [("submissions", 0)]
    rows: list[tuple[str, Any]] = [("submissions", len(records))]
    for status in sorted({r.get("status", "") for r in records}):
        rows.append((f"  {status}", sum(r.get("status") == status for r in records)))
    records = [r for r in records if r.get("score", 0) is not None]  # means over the graded ones
    n = len(records)
    if not n:
        return rows
    rows.append(("mean score", f"{sum(r.get('score', 0) for r in records) / n:.2f} / {max(r.get('max_score', 0) for r in records):g}"))
    for q in questions:
        mean = sum(r.get("questions", {}).get(q, {}).get("score", 0) for r in records) / n
        rows.append((f"  {q}", f"{mean:.2f}"))
    times = sorted(r.get("execution_time", 0) for r in records)
    rows.append(("seconds per submission (median)", f"{times[len(times) // 2]:.2f}"))
    return rows


@dataclass
class BatchResult:
    """What :func:`edgekit.grading.batch.grade_batch` did: one record per student (as written to
    ``OUT/.edgekit/records/``), who was graded in this run, who was kept, who was left."""

    lab: str
    out: Path
    records: list[dict]
    graded: list[str] = field(default_factory=list)   # graded in this run
    skipped: list[str] = field(default_factory=list)  # unchanged since a previous run
    isolation: str = ""
    not_graded: list[str] = field(default_factory=list)  # left when the run was interrupted
    warnings: list[str] = field(default_factory=list)  # for the instructor: debris that could not be removed

    @property
    def scores(self) -> dict[str, float | None]:
        return {r["student"]: r.get("score", 0.0) for r in self.records}

    def to_dict(self) -> dict:
        """JSON-ready; the records as the instructor's files hold them (``json.dumps(default=str)``)."""
        return {"schema": "edgekit.grading.batch/1", "lab": self.lab, "out": str(self.out),
                "records": json.loads(json.dumps(self.records, default=str)), "graded": self.graded,
                "skipped": self.skipped, "isolation": self.isolation, "not_graded": self.not_graded,
                "warnings": self.warnings}

    def __str__(self) -> str:
        questions = next((list(r["questions"]) for r in self.records if r.get("questions")), [])
        head = (f"{self.lab}: {len(self.graded)} graded now, {len(self.skipped)} unchanged (kept), "
                f"{len(self.not_graded)} not graded; grades in {Path(self.out) / 'grades.csv'}")
        rows = [f"  {k}: {v}" for k, v in summary_rows(self.records, questions)]
        return "\n".join([head, *rows, *[f"warning: {w}" for w in self.warnings]])
