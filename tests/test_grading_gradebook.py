"""The gradebook: manual (rubric) grades in OUT/gradebook.sqlite, and grades.csv, results.json and
feedback.html regenerated from the autograder's records plus those grades (and the late penalty).

One real grading run of lab11 (a partial submission and two stubs) per module; every file written
is read back with the stdlib (csv, json, html.parser, sqlite3).
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import shutil
import sqlite3
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgekit.grading import grade_batch, load_lab
from edgekit.grading import gradebook as gb
from edgekit.grading.lab import LabError
from edgekit.grading.notebook import read_notebook, role

ROOT = Path(__file__).parents[1]
LAB = ROOT / "labs" / "lab11-capstone"
RELEASED = ROOT / "notebooks" / "lab11-capstone" / "lab11-capstone.ipynb"
STUDENTS = ("bo", "nguyen_van_a", "zoe_angstrom")
WRITEUPS = {"nguyen_van_a": "## Nguyễn Văn A's report\n\nWe ship **int8**, 2 threads. <script>alert('md')</script>",
            "zoe_angstrom": "Zoë Ångström: *fp32*, because accuracy."}


def grade_lab11(root: Path) -> tuple[Path, Path]:
    """(SUBMISSIONS, OUT) of a real grading run: nguyen_van_a answers q1 partially (the cheap one), bo and zoe_angstrom hand in
    the stubs; two of them wrote the report (the markdown cell ``writeup``)."""
    import nbformat

    partial = json.loads((LAB / "fixtures" / "partial.json").read_text())
    subs = root / "subs"
    for student in STUDENTS:
        nb = read_notebook(RELEASED)
        for cell in nb.cells:
            kind, qid = role(cell)
            if student == "nguyen_van_a" and kind == "answer" and qid == "q1":  # q1 only: no model to build
                cell.source = partial[qid]
            if cell.get("id") == "writeup" and student in WRITEUPS:
                cell.source = WRITEUPS[student]
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "lab11-capstone.ipynb")
    grade_batch(LAB, subs, root / "out", jobs=2, progress=False)
    return subs, root / "out"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_lab11(tmp_path_factory.mktemp("lab11"))


@pytest.fixture
def out(graded, tmp_path):
    """A fresh copy of the graded folder (each test edits its own gradebook)."""
    shutil.copytree(graded[1], tmp_path / "out")
    return tmp_path / "out"


def rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.parts.append(data)


def page_text(path: Path) -> tuple[str, list[str]]:
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    return " ".join(" ".join(p.parts).split()), p.tags


def test_regenerate_puts_manual_scores_in_every_file(out):
    auto = {s: float(r["score"]) for s, r in rows(out).items()}
    assert auto["nguyen_van_a"] > 0 and rows(out)["bo"]["writeup"] == ""
    lab = load_lab(LAB)
    gb.set_score(out, "nguyen_van_a", "writeup", 4, "Good evidence; <b>risks</b> thin.", "ta1", lab=lab)
    gb.set_score(out, "zoe_angstrom", "writeup", 2.5, "No method.", "ta2", lab=lab)
    gb.regenerate(out, lab)

    got = rows(out)
    assert [got[s]["writeup"] for s in STUDENTS] == ["", "4", "2.5"]
    assert {r["max_score"] for r in got.values()} == {"14"}  # 9 autograded + 5 manual
    assert float(got["nguyen_van_a"]["score"]) == pytest.approx(auto["nguyen_van_a"] + 4)
    assert float(got["zoe_angstrom"]["score"]) == pytest.approx(auto["zoe_angstrom"] + 2.5)
    res = json.loads((out / "nguyen_van_a" / "results.json").read_text())
    assert res["score"] == pytest.approx(auto["nguyen_van_a"] + 4)
    assert res["extra_data"]["questions"]["writeup"] == {"score": 4.0, "max_score": 5.0,
                                                          "comment": "Good evidence; <b>risks</b> thin.", "grader": "ta1"}
    text, tags = page_text(out / "nguyen_van_a" / "feedback.html")
    assert "writeup 4 / 5 Good evidence; <b>risks</b> thin." in text and tags.count("b") == 1  # the comment: text
    assert "not graded yet" not in text
    text, _ = page_text(out / "bo" / "feedback.html")
    assert "writeup not graded yet / 5" in text


def test_regenerate_is_idempotent_and_survives_a_regrading_run(out, graded):
    lab = load_lab(LAB)
    gb.set_score(out, "bo", "writeup", 3, "ok", lab=lab)
    first = gb.regenerate(out, lab)
    csv_once = (out / "grades.csv").read_text()
    assert gb.regenerate(out, lab) == first and (out / "grades.csv").read_text() == csv_once
    gb.set_score(out, "bo", "writeup", None, lab=lab)  # removed: the cell empties again
    gb.regenerate(out, lab)
    assert rows(out)["bo"]["writeup"] == "" and float(rows(out)["bo"]["score"]) == 0
    gb.set_score(out, "bo", "writeup", 1, "brief", lab=lab)
    grade_batch(LAB, graded[0], out, jobs=2, progress=False)  # nothing changed: kept, and the gradebook re-applied
    assert rows(out)["bo"]["writeup"] == "1" and float(rows(out)["bo"]["score"]) == 1


def test_late_fraction_scales_auto_and_manual_points(out):
    lab = load_lab(LAB)
    auto = float(rows(out)["nguyen_van_a"]["score"])
    path = gb.records_dir(out) / "nguyen_van_a.json"
    record = json.loads(path.read_text())
    note = "Submitted 2 days late: 20% off."
    record["late"] = {"days": 2, "fraction": 0.2, "note": note, "submitted_at": "2026-11-05T10:00:00+00:00"}
    path.write_text(json.dumps(record))
    gb.set_score(out, "nguyen_van_a", "writeup", 5, "", lab=lab)
    gb.regenerate(out, lab, students=["nguyen_van_a"])
    assert float(rows(out)["nguyen_van_a"]["score"]) == pytest.approx((auto + 5) * 0.8, abs=1e-3)
    assert rows(out)["nguyen_van_a"]["writeup"] == "5"  # the question's own cell is not penalised
    assert note in page_text(out / "nguyen_van_a" / "feedback.html")[0]


def test_late_penalty_of_the_grader_and_rubric_points_count_once(out):
    """The real order: grade_batch applies the late policy (late.apply), a TA grades the rubric, then a
    corrected roster makes grade_batch apply a new penalty: each step starts from the autograder's own total."""
    from edgekit.grading.late import Penalty, apply

    lab = load_lab(LAB)
    auto = float(rows(out)["nguyen_van_a"]["score"])
    path = gb.records_dir(out) / "nguyen_van_a.json"

    def penalise(days, fraction):  # what apply_roster does to the stored record
        path.write_text(json.dumps(apply(json.loads(path.read_text()), Penalty(days, fraction, f"{days} days late"))))

    penalise(1, 0.1)
    gb.set_score(out, "nguyen_van_a", "writeup", 5, "", lab=lab)
    gb.regenerate(out, lab, students=["nguyen_van_a"])  # as the review page does after a save
    assert float(rows(out)["nguyen_van_a"]["score"]) == pytest.approx((auto + 5) * 0.9, abs=1e-3)
    penalise(3, 0.3)  # the roster corrected: 3 days late
    gb.regenerate(out, lab)
    assert float(rows(out)["nguyen_van_a"]["score"]) == pytest.approx((auto + 5) * 0.7, abs=1e-3)
    penalise(0, 0.0)  # on time after all
    gb.regenerate(out, lab)
    assert float(rows(out)["nguyen_van_a"]["score"]) == pytest.approx(auto + 5, abs=1e-3)


def test_mistakes_raise_errors_that_say_what_to_do(out):
    lab = load_lab(LAB)
    with pytest.raises(LabError, match=r"writeup is worth 0 to 5 points; got 6"):
        gb.set_score(out, "bo", "writeup", 6, lab=lab)
    with pytest.raises(LabError, match=r"question q1 of lab11-capstone is autograded; only its manual questions \(writeup\)"):
        gb.set_score(out, "bo", "q1", 1, lab=lab)
    with pytest.raises(LabError, match=r"no graded submission of student 'nobody'.*bo, nguyen_van_a"):
        gb.set_score(out, "nobody", "writeup", 1, lab=lab)
    with pytest.raises(LabError, match=r"must be a number from 0 to 5; got 'lots'"):
        gb.set_score(out, "bo", "writeup", "lots", lab=lab)
    with pytest.raises(LabError, match="has no question 'q9'"):
        gb.set_score(out, "bo", "q9", 1, lab=lab)
    assert gb.manual_scores(out) == {}


def _hammer(out: str, me: int, n: int) -> None:
    lab = load_lab(LAB)
    for i in range(n):
        gb.set_score(out, f"s{i:03d}", "writeup", (i + me) % 6, f"from writer {me}", f"ta{me}", lab=lab)
        gb.set_score(out, f"own{me}-{i:03d}", "writeup", 1, lab=lab)
        gb.set_flag(out, f"s{i:03d}", "writeup", i % 2 == me)


def test_two_writers_at_once_lose_no_edit(tmp_path):
    out, n = tmp_path / "out", 40
    gb.records_dir(out).mkdir(parents=True)
    for name in [f"s{i:03d}" for i in range(n)] + [f"own{w}-{i:03d}" for w in (0, 1) for i in range(n)]:
        (gb.records_dir(out) / f"{name}.json").write_text(json.dumps({"student": name, "score": 0.0}))
    # two processes, each with its own connections, as two review servers
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    procs = [ctx.Process(target=_hammer, args=(str(out), me, n)) for me in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with sqlite3.connect(out / "gradebook.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert con.execute("SELECT count(*) FROM scores").fetchone() == (3 * n,)
        for w in (0, 1):
            assert con.execute("SELECT count(*) FROM scores WHERE student LIKE ?", (f"own{w}-%",)).fetchone() == (n,)
        shared = con.execute("SELECT student, points, grader FROM scores WHERE student LIKE 's%'").fetchall()
    assert all(points == (int(s[1:]) + int(g[-1])) % 6 for s, points, g in shared)  # each row whole, one writer's
