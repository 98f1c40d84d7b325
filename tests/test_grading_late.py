"""The late policy: [late] in lab.toml, the penalty at its boundaries, and grading that applies it once."""

import csv
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from edgekit._errors import ConfigError, LabError
from edgekit.grading import grade_batch, load_lab
from edgekit.grading.late import ON_TIME, apply, parse, penalty
from edgekit.grading.notebook import read_notebook

LABS = Path(__file__).parents[1] / "labs"
DEMO = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
POLICY = parse({"deadline": "2026-11-03T23:59:00+00:00", "per_day": 0.1, "max_days": 3}, "lab.toml")
ROSTER = "id,name,email,submitted_at,files,notes\n"
NOTE_MOVED = "Submitted 3 days late (2026-11-08 00:00 UTC): -30%"


@pytest.mark.parametrize("submitted, days, fraction", [
    ("2026-11-03T23:59:00+00:00", 0, 0.0),      # exactly at the deadline: on time
    ("2026-11-04T00:59:00+01:00", 0, 0.0),      # the same instant in another zone
    ("2026-11-03T23:59:01+00:00", 1, 0.1),      # one second late is one day started
    ("2026-11-04T23:59:00+00:00", 1, 0.1),      # exactly one day late
    ("2026-11-04T23:59:01+00:00", 2, 0.2),
    ("2026-11-06T23:59:00+00:00", 3, 0.3),      # max_days itself still earns credit
    ("2026-11-06T23:59:01+00:00", 4, 1.0),      # past max_days: no credit
    ("", 0, 0.0),                                # no time known: nothing taken
])
def test_penalty_boundaries(submitted, days, fraction):
    pen = penalty(POLICY, submitted)
    assert (pen.days, pen.fraction) == (days, pytest.approx(fraction))
    assert bool(pen.note) == bool(days)


def test_penalty_notes_say_when_and_how_much():
    assert penalty(POLICY, "2026-11-05T11:00:00+01:00").note == "Submitted 2 days late (2026-11-05 10:00 UTC): -20%"
    assert "no credit" in penalty(POLICY, "2026-11-10T00:00:00+00:00").note
    assert penalty(None, "2030-01-01T00:00:00+00:00") == ON_TIME


def test_max_days_zero_and_a_steep_rate():
    zero = parse({"deadline": "2026-11-03T23:59:00Z", "max_days": 0}, "lab.toml")
    assert penalty(zero, "2026-11-03T23:59:01+00:00").fraction == 1.0
    steep = parse({"deadline": "2026-11-03T23:59:00+00:00", "per_day": 0.5, "max_days": 3}, "lab.toml")
    assert penalty(steep, "2026-11-06T12:00:00+00:00").fraction == 1.0  # 3 days x 0.5, capped at all of it


@pytest.mark.parametrize("table, words", [
    ({"deadline": "2026-11-03T23:59:00"}, "offset"),               # naive: which zone's 23:59?
    ({"deadline": "3 November"}, "ISO 8601"),
    ({"deadline": "2026-11-03T23:59:00+00:00", "per_day": 1.5}, "0 to 1"),
    ({"deadline": "2026-11-03T23:59:00+00:00", "max_days": -1}, ">= 0"),
    ({"deadline": "2026-11-03T23:59:00+00:00", "max_days": 1.5}, ">= 0"),
    ({"deadline": "2026-11-03T23:59:00+00:00", "perday": 0.1}, "per_day"),
    ({"per_day": 0.1}, "deadline"),
])
def test_bad_late_tables_are_lab_errors(table, words):
    with pytest.raises(LabError, match=words):
        parse(table, "lab.toml")


def test_naive_submitted_at_is_an_error():
    with pytest.raises(ConfigError, match="offset"):
        penalty(POLICY, "2026-11-05T10:00:00")


def test_lab_toml_late_table(tmp_path):
    lab = tmp_path / "demo"
    shutil.copytree(DEMO, lab)
    assert load_lab(lab).late is None
    toml = (lab / "lab.toml").read_text()
    (lab / "lab.toml").write_text(toml + "\n[late]\ndeadline = 2026-11-03T23:59:00+02:00\nper_day = 0.25\nmax_days = 2\n")
    late = load_lab(lab).late  # a TOML offset date-time, unquoted, works as well as a string
    assert (late.deadline.isoformat(), late.per_day, late.max_days) == ("2026-11-03T23:59:00+02:00", 0.25, 2)
    (lab / "lab.toml").write_text(toml + "\n[late]\ndeadline = 2026-11-03T23:59:00\n")
    with pytest.raises(LabError, match="add the offset"):
        load_lab(lab)


def test_apply_is_idempotent_and_reversible():
    rec = {"student": "s", "score": 8.0, "max_score": 8.0, "notes": ["a note"]}
    pen = penalty(POLICY, "2026-11-05T10:00:00+00:00")
    once = apply(rec, pen, "2026-11-05T10:00:00+00:00")
    assert once["score"] == pytest.approx(6.4) and once["late"]["score_before"] == 8.0
    assert once["notes"] == [pen.note, "a note"]
    assert apply(once, pen, "2026-11-05T10:00:00+00:00") == once  # a second pass takes nothing more
    assert apply(once, ON_TIME) == rec  # on time after all (a corrected roster): the score comes back
    assert apply({"student": "r", "score": None}, pen) == {"student": "r", "score": None}  # refused: no score


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text = []

    def handle_data(self, data):
        self.text.append(data)


def _feedback_text(path: Path) -> str:
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    return "".join(p.text)


def test_grading_applies_the_policy_once(tmp_path):
    """A real grading run of lab00-setup with a roster: late scores reduced, shown, and not again on resume."""
    lab = tmp_path / "lab00-setup"
    shutil.copytree(LABS / "lab00-setup", lab)
    with open(lab / "lab.toml", "a") as f:
        f.write('\n[late]\ndeadline = "2026-11-03T23:59:00+00:00"\nper_day = 0.1\nmax_days = 3\n')
    subs = tmp_path / "subs"
    times = {"ontime": "2026-11-03T20:00:00+00:00", "late2": "2026-11-05T10:00:00+00:00",
             "toolate": "2026-11-08T00:00:00+00:00"}
    for sid in times:
        (subs / sid).mkdir(parents=True)
        nbformat.write(read_notebook(lab / "lab.ipynb"), subs / sid / "lab00-setup.ipynb")
    (subs / "roster.csv").write_text(ROSTER + "".join(f"{s},Student {s},{s}@example.edu,{t},lab00-setup.ipynb,\n"
                                                      for s, t in times.items()))
    out = tmp_path / "out"
    first = grade_batch(lab, subs, out, jobs=2, progress=False)
    assert sorted(first.graded) == sorted(times)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"ontime": 8.0, "late2": pytest.approx(6.4), "toolate": 0.0}
    note = "Submitted 2 days late (2026-11-05 10:00 UTC): -20%"
    assert _feedback_text(out / "late2" / "feedback.html").count(note) == 1
    res = json.loads((out / "late2" / "results.json").read_text())
    assert res["score"] == pytest.approx(6.4) and note in res["output"]
    late = res["extra_data"]["late"]
    assert late == {"days": 2, "fraction": 0.2, "note": note, "submitted_at": times["late2"], "score_before": 8.0}
    assert "late" not in json.loads((out / ".edgekit" / "records" / "ontime.json").read_text())
    assert (out / ".edgekit" / "roster.csv").read_text() == (subs / "roster.csv").read_text()  # for `edgekit export`

    again = grade_batch(lab, subs, out, jobs=2, progress=False)  # resumed: records read back, penalised already
    assert sorted(again.skipped) == sorted(times) and not again.graded
    assert again.scores == first.scores
    rows2 = list(csv.DictReader((out / "grades.csv").open(encoding="utf-8")))
    assert {r["student"]: r["score"] for r in rows2} == {s: r["score"] for s, r in rows.items()}
    assert _feedback_text(out / "late2" / "feedback.html").count(note) == 1
    full = json.loads((out / ".edgekit" / "records" / "late2.json").read_text())
    assert full["notes"].count(note) == 1 and full["late"]["score_before"] == 8.0

    toml = (lab / "lab.toml").read_text()  # the deadline moved two days: no regrade, the scores follow
    (lab / "lab.toml").write_text(toml.replace("2026-11-03T23:59:00+00:00", "2026-11-05T23:59:00+00:00"))
    moved = grade_batch(lab, subs, out, jobs=2, progress=False)
    assert sorted(moved.skipped) == sorted(times) and not moved.graded
    assert moved.scores == {"ontime": 8.0, "late2": 8.0, "toolate": pytest.approx(5.6)}  # 2 days 1 minute: 3 days started
    assert NOTE_MOVED in json.loads((out / "toolate" / "results.json").read_text())["output"]
    assert note not in json.loads((out / "late2" / "results.json").read_text())["output"]
