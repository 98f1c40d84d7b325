"""Grades as files: Gradescope ``results.json`` and ``feedback.html`` per student, ``grades.csv`` per batch.

Every file is written to a temporary name and renamed into place, so a reader — or a grading run
resumed after a kill — sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from pathlib import Path
from typing import Any


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    """The record a previous run wrote, or None when absent or unreadable."""
    try:
        return json.loads((student_dir / "results.json").read_text(encoding="utf-8"))["extra_data"] | {
            "tests": json.loads((student_dir / "results.json").read_text(encoding="utf-8"))["tests"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    qrows = "".join(f"<tr><td>{e(q)}</td><td>{v['score']:g} / {v['max_score']:g}</td></tr>"
                    for q, v in record.get("questions", {}).items())
    notes = "".join(f"<li>{e(n)}</li>" for n in record.get("notes", []) if not n.startswith("Traceback"))
    cells = "".join(f"<li>{e(label)}<pre>{e(err)}</pre></li>" for label, err in record.get("cells", []))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}}td{{vertical-align:top;padding:2px 8px}}
tr.passed td:first-child{{color:#080}}tr.failed td:first-child{{color:#b00}}pre{{white-space:pre-wrap;margin:0}}</style></head>
<body><h1>{e(title)}</h1><p><b>Score: {record.get('score', 0):g} / {record.get('max_score', 0):g}</b>
 — status {e(str(record.get('status')))}, graded in {record.get('execution_time', 0):.2f} s</p>
<h2>Questions</h2><table>{qrows}</table>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
{f'<h2>Cells that raised an error</h2><ul>{cells}</ul>' if cells else ''}
<h2>Tests</h2><table>{''.join(rows)}</table>
<h2>Your output (truncated)</h2><pre>{e(record.get('output', ''))}</pre></body></html>
"""


def write_student(student_dir: Path, record: dict, lab=None) -> None:
    atomic_write(student_dir / "feedback.html", feedback_html(record, lab))
    atomic_write(student_dir / "results.json", json.dumps(gradescope(record), indent=1, default=str))  # last: marks done


def grades_csv(records: list[dict], questions: list[str]) -> str:
    """One row per student: student, score, max_score, one column per question, status."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    fidelity = any(r.get("disputed") for r in records)  # only then: nbgrader test cells the replay disputed
    w.writerow(["student", "score", "max_score", *questions, "status"] + (["fidelity"] if fidelity else []))
    for r in sorted(records, key=lambda r: r["student"]):
        qs = r.get("questions", {})
        w.writerow([r["student"], f"{r.get('score', 0):g}", f"{r.get('max_score', 0):g}",
                    *[f"{qs[q]['score']:g}" if q in qs else "" for q in questions], r.get("status", "")]
                   + ([f"{r['disputed']} disputed" if r.get("disputed") else ""] if fidelity else []))
    return buf.getvalue()


def summary_rows(records: list[dict], questions: list[str]) -> list[tuple[str, Any]]:
    n = len(records)
    if not n:
        return [("submissions", 0)]
    rows: list[tuple[str, Any]] = [("submissions", n)]
    for status in sorted({r.get("status", "") for r in records}):
        rows.append((f"  {status}", sum(r.get("status") == status for r in records)))
    rows.append(("mean score", f"{sum(r.get('score', 0) for r in records) / n:.2f} / {records[0].get('max_score', 0):g}"))
    for q in questions:
        mean = sum(r.get("questions", {}).get(q, {}).get("score", 0) for r in records) / n
        rows.append((f"  {q}", f"{mean:.2f}"))
    times = sorted(r.get("execution_time", 0) for r in records)
    rows.append(("seconds per submission (median)", f"{times[len(times) // 2]:.2f}"))
    return rows
