"""`edgekit export`: grades.csv + roster.csv as Moodle's and Canvas's grade import files, read back with csv."""

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from edgekit._errors import ConfigError
from edgekit.cli.main import main as cli
from edgekit.grading import grade_batch, load_lab
from edgekit.grading.lms_export import export_grades
from edgekit.grading.notebook import read_notebook

LABS = Path(__file__).parents[1] / "labs"
DEMO = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
ROSTER = [  # id, name, email, submitted_at; "absent" handed nothing in
    ("1001", "Nguyễn Văn A", "nguyen.a@example.edu", "2026-11-05T10:00:00+00:00"),
    ("1002", "Zoë Ångström", "zoe@example.edu", "2026-11-03T12:00:00+00:00"),
    ("1003", "Doe, Jane \"JD\"", "jane@example.edu", "2026-11-03T12:00:00+00:00"),
    ("1004", "Absent Student", "absent@example.edu", ""),
    ("1005", "Refused Folder", "refused@example.edu", "2026-11-03T12:00:00+00:00"),
]
GRADES = [  # student, score, max_score, q1, status; "ghost" was graded but is in no roster
    ("1001", "6.4", "8", "2", "graded"), ("1002", "8", "8", "2", "graded"), ("1003", "0", "8", "0", "missing"),
    ("1005", "", "8", "", "refused"), ("ghost", "4", "8", "2", "graded"),
]
NOTE = "Submitted 2 days late (2026-11-05 10:00 UTC): -20%"


def _write_csv(path: Path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def out(tmp_path):
    """A graded OUT as `edgekit grade` leaves it: grades.csv, the records, the roster's copy."""
    out = tmp_path / "out"
    _write_csv(out / "grades.csv", ["student", "score", "max_score", "q1", "status"], GRADES)
    _write_csv(out / ".edgekit" / "roster.csv", ["id", "name", "email", "submitted_at", "files", "notes", "section"],
               [(*r, "lab.ipynb", "", "L01") for r in ROSTER])
    late = {"days": 2, "fraction": 0.2, "note": NOTE, "submitted_at": ROSTER[0][3], "score_before": 8.0}
    for sid, *_ in GRADES:
        rec = {"student": sid, "lab": "lab00-setup"} | ({"late": late} if sid == "1001" else {})
        (out / ".edgekit" / "records").mkdir(parents=True, exist_ok=True)
        (out / ".edgekit" / "records" / f"{sid}.json").write_text(json.dumps(rec))
    return out


def _read(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _once(ids):
    assert sorted(ids) == sorted({r[0] for r in ROSTER} | {"ghost"}) and len(ids) == len(set(ids)), ids


def test_moodle_keyed_by_email_with_feedback(out):
    res = export_grades(out, "moodle")
    rows = _read(res.path)
    assert res.path == out / "export-moodle.csv" and res.students == 6
    assert rows[0] == ["Email address", "Full name", "lab00-setup", "Feedback"]
    by_email = {r[0]: r for r in rows[1:]}
    assert by_email["nguyen.a@example.edu"][1:] == ["Nguyễn Văn A", "6.4", NOTE]
    assert by_email["zoe@example.edu"][2:] == ["8", ""]
    assert by_email["jane@example.edu"][1:3] == ["Doe, Jane \"JD\"", "0"]  # quoted, and missing's 0 stays a 0
    assert by_email["absent@example.edu"][2] == "" and by_email["refused@example.edu"][2] == ""  # empty, not 0
    assert "status: refused" in by_email["refused@example.edu"][3]
    assert by_email[""][2] == "4"  # ghost: no email, still exported once
    _once([ROSTER_BY_EMAIL[r[0]][0] if r[0] else "ghost" for r in rows[1:]])
    assert res.ungraded == ["1004", "1005"] and res.unknown == ["ghost"]
    text = " ".join(res.warnings)
    assert "1004, 1005" in text and "ghost" in text and "Moodle's import cannot match" in text


ROSTER_BY_EMAIL = {r[2]: r for r in ROSTER}


def test_canvas_header_rows(out):
    res = export_grades(out, "canvas", assignment="Lab 0 (4821)")
    rows = _read(res.path)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 0 (4821)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "8"]
    body = rows[2:]
    _once([r[1] or r[0] for r in body])
    by_id = {r[1] or r[0]: r for r in body}
    assert by_id["1001"] == ["Nguyễn Văn A", "1001", "", "", "L01", "6.4"]
    assert by_id["1004"][5] == "" and by_id["1005"][5] == ""
    assert by_id["ghost"][1] == ""  # not a Canvas user id: Canvas matches the row by name, or reports it


def test_plain_csv(out, tmp_path):
    res = export_grades(out, "csv", to=tmp_path / "g.csv")
    rows = list(csv.DictReader(res.path.open(encoding="utf-8", newline="")))
    assert list(rows[0]) == ["id", "name", "email", "score", "max_score", "late", "status"]
    _once([r["id"] for r in rows])
    got = {r["id"]: (r["score"], r["late"], r["status"]) for r in rows}
    assert got["1001"] == ("6.4", "2", "graded") and got["1002"] == ("8", "", "graded")
    assert got["1004"] == ("", "", "not submitted") and got["1005"] == ("", "", "refused")
    assert [r["id"] for r in rows] == [r[0] for r in ROSTER] + ["ghost"]  # the roster's order, then the rest


def test_errors_say_what_to_do(out, tmp_path):
    with pytest.raises(ConfigError, match="edgekit grade"):
        export_grades(tmp_path / "nothing", "csv")
    (out / ".edgekit" / "roster.csv").unlink()
    with pytest.raises(ConfigError, match="--submissions"):
        export_grades(out, "moodle")
    with pytest.raises(ConfigError, match="moodle, canvas, csv"):
        export_grades(out, "blackboard")


def test_gradebook_regenerated_first(out, monkeypatch):
    """With rubric scores in OUT/gradebook.sqlite, gradebook.regenerate runs before grades.csv is read,
    for the lab `edgekit grade` recorded in OUT/.edgekit/batch.json (or --lab)."""
    from edgekit.grading import lms_export

    calls = []

    def regenerate(o, lab):
        calls.append((Path(o), lab.id))
        _write_csv(Path(o) / "grades.csv", ["student", "score", "max_score", "status"], [("1002", "9.5", "10", "graded")])

    monkeypatch.setattr(lms_export, "regenerate", regenerate)
    rows = _read(export_grades(out, "csv").path)  # no gradebook.sqlite: nothing to merge
    assert not calls and rows[2][3] == "8"
    (out / "gradebook.sqlite").write_bytes(b"")
    with pytest.raises(ConfigError, match="--lab"):
        export_grades(out, "csv")
    rows = _read(export_grades(out, "csv", lab=DEMO).path)
    assert calls == [(out, "lab00-demo")] and rows[2][3] == "9.5"
    (out / ".edgekit" / "batch.json").write_text(json.dumps({"lab": str(DEMO)}))
    export_grades(out, "csv")
    assert calls[-1] == (out, "lab00-demo")


def test_real_grading_then_export_from_the_cli(tmp_path, capsys):
    """lab00-setup graded for real (one submission, a roster with one more student), then exported."""
    subs = tmp_path / "subs"
    (subs / "s1").mkdir(parents=True)
    lab = load_lab(LABS / "lab00-setup")
    nbformat.write(read_notebook(lab.notebook_path), subs / "s1" / "lab00-setup.ipynb")
    _write_csv(subs / "roster.csv", ["id", "name", "email", "submitted_at", "files", "notes"],
               [("s1", "Zoë Ångström", "zoe@example.edu", "2026-11-03T12:00:00+00:00", "lab00-setup.ipynb", ""),
                ("s2", "Nguyễn Văn A", "nguyen.a@example.edu", "", "", "no notebook in the export")])
    out = tmp_path / "out"
    grade_batch(LABS / "lab00-setup", subs, out, jobs=1, progress=False)
    shutil.rmtree(subs)  # export reads the roster's copy in OUT
    assert cli(["export", str(out), "--lms", "moodle"]) == 0
    std = capsys.readouterr()
    assert "2 students" in std.out and "useremail" in std.out and "s2" in std.err
    rows = _read(out / "export-moodle.csv")
    assert rows == [["Email address", "Full name", "lab00-setup", "Feedback"],
                    ["zoe@example.edu", "Zoë Ångström", "8", ""],
                    ["nguyen.a@example.edu", "Nguyễn Văn A", "", "status: not submitted"]]
