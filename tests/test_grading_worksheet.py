"""Moodle's grading worksheet: e-mails and times into the roster at collect, grades back into it at export.

The worksheet here is written the way Moodle's ``assign_grading_table`` downloads it (UTF-8 with a
BOM, CRLF, English headers, ``userdate()`` times without an offset, ``-`` for none); what edgekit
writes is read back with the stdlib's csv.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from edgekit._errors import LabError
from edgekit.cli.main import main as cli
from edgekit.grading.collect import collect
from edgekit.grading.lms_export import export_grades
from edgekit.grading.notebook import read_notebook
from edgekit.grading.worksheet import WORKSHEET, fill, moodle_time, read, zone

LABS = Path(__file__).parents[1] / "labs"
M = "_assignsubmission_file_/"
HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
          "Last modified (submission)", "Online text", "Last modified (grade)", "Feedback comments"]


def row(pid, name, email, submitted, status="Submitted for grading", grade="", feedback="", changeable="Yes"):
    return [f"Participant {pid}", name, email, status, grade, "100.00", changeable, submitted, "", "-", feedback]


def write_sheet(path: Path, rows, *, bom=True, newline="\r\n") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows([HEADER, *rows])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode())
    return path


def read_back(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def roster(out: Path) -> dict[str, dict]:
    with open(out / "roster.csv", newline="", encoding="utf-8") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


NB = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).encode()
SHEET = [  # Berlin time: 4 November 00:30 there is 3 November 23:30 UTC
    row(100001, "Nguyễn Văn A", "nguyen.a@example.edu", "Wednesday, 4 November 2026, 12:30 AM"),
    row(100002, "Zoë Ångström", "zoe@example.edu", "Thursday, 5 November 2026, 11:00 AM", feedback="Nice plots."),
    row(100003, "Doe, Jane \"JD\"", "jane@example.edu", "-", status="No submission"),
]


@pytest.fixture
def download(tmp_path):
    z = make_zip(tmp_path / "moodle.zip", {f"Nguyễn Văn A_100001{M}lab00-setup.ipynb": NB,
                                           f"Zoë Ångström_100002{M}lab00-setup (1).ipynb": NB})
    return z, write_sheet(tmp_path / "worksheet.csv", SHEET)


def test_collect_joins_the_worksheet(download, tmp_path):
    z, sheet = download
    res = collect(z, "moodle", tmp_path / "subs", "lab00-setup", worksheet=sheet, timezone="Europe/Berlin")
    rows = roster(tmp_path / "subs")
    assert sorted(rows) == ["100001", "100002", "100003"] and res.timezone == "Europe/Berlin"
    assert [(rows[i]["email"], rows[i]["submitted_at"]) for i in sorted(rows)] == [
        ("nguyen.a@example.edu", "2026-11-04T00:30:00+01:00"), ("zoe@example.edu", "2026-11-05T11:00:00+01:00"),
        ("jane@example.edu", "")]
    absent = rows["100003"]
    assert (absent["name"], absent["files"], absent["notes"]) == ("Doe, Jane \"JD\"", "", "no submission")
    assert not (tmp_path / "subs" / "100003").exists()  # a roster row, no folder for grade to call missing
    assert rows["100002"]["files"] == "lab00-setup.ipynb" and rows["100001"]["name"] == "Nguyễn Văn A"
    assert (tmp_path / "subs" / WORKSHEET).read_bytes() == sheet.read_bytes()
    assert res.warnings == []


def test_collect_warns_on_participants_the_other_file_lacks(tmp_path):
    z = make_zip(tmp_path / "m.zip", {f"Test Student_100009{M}lab00-setup.ipynb": NB,
                                      f"Nguyễn Văn A_100001{M}lab00-setup.ipynb": NB})
    sheet = write_sheet(tmp_path / "w.csv", [SHEET[0], row(100004, "Late Uploader", "late@example.edu",
                                                           "Friday, 6 November 2026, 9:15 AM")], bom=False, newline="\n")
    res = collect(z, "moodle", tmp_path / "subs", "lab00-setup", worksheet=sheet, timezone="UTC")
    assert any("100004" in w and "Submitted for grading" in w for w in res.warnings)
    assert any("not in the worksheet: participant(s) 100009" in w for w in res.warnings)
    rows = roster(tmp_path / "subs")
    assert rows["100009"]["email"] == "" and rows["100004"]["submitted_at"] == "2026-11-06T09:15:00+00:00"


def test_default_zone_is_this_machines(download, tmp_path, monkeypatch, capsys):
    z, sheet = download
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert cli(["collect", str(z), "--lms", "moodle", "--lab", "lab00-setup", "--out", str(tmp_path / "subs"),
                    "--worksheet", str(sheet)]) == 0
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "read as America/New_York (this machine's local zone) time" in capsys.readouterr().out
    assert roster(tmp_path / "subs")["100002"]["submitted_at"] == "2026-11-05T11:00:00-05:00"


@pytest.mark.parametrize("bad, words", [
    (row(100001, "A", "a@example.edu", "Dienstag, 3. Brumaire 2026, 14:05"), "line 3: Last modified"),
    (row(100001, "A", "a@example.edu", "Tuesday, 3 November 2026, 13:05 PM"), "line 3: Last modified"),
    (["Teilnehmer/in", "A", "a@example.edu"], "line 3: Identifier"),
    (row(100002, "Again", "z2@example.edu", "-"), "line 3: participant 100002 again"),
])
def test_a_row_that_cannot_be_read_names_its_line(tmp_path, download, bad, words):
    z, _ = download
    sheet = write_sheet(tmp_path / "bad.csv", [SHEET[1], bad])
    with pytest.raises(LabError, match=words):
        collect(z, "moodle", tmp_path / "subs", "lab00-setup", worksheet=sheet, timezone="UTC")
    assert not (tmp_path / "subs").exists()


def test_wrong_inputs_say_what_to_do(tmp_path, download):
    z, sheet = download
    (tmp_path / "x.csv").write_text("Bezeichner,Vollständiger Name\nTeilnehmer/in 1,A\n")
    with pytest.raises(LabError, match="language set to English"):
        collect(z, "moodle", tmp_path / "s1", "lab00-setup", worksheet=tmp_path / "x.csv")
    with pytest.raises(LabError, match="Europe/Berlin"):
        collect(z, "moodle", tmp_path / "s2", "lab00-setup", worksheet=sheet, timezone="Mars/Olympus")
    with pytest.raises(LabError, match="--lms moodle"):
        collect(z, "canvas", tmp_path / "s3", "lab00-setup", worksheet=sheet)
    with pytest.raises(LabError, match="give --worksheet"):
        collect(z, "moodle", tmp_path / "s4", "lab00-setup", timezone="UTC")


@pytest.mark.parametrize("text, iso", [
    ("Tuesday, 3 November 2026, 2:05 PM", "2026-11-03T14:05:00+01:00"),
    ("Tuesday, 3 November 2026, 12:05 AM", "2026-11-03T00:05:00+01:00"),
    ("Sunday, 29 March 2026, 3:30 AM", "2026-03-29T03:30:00+02:00"),  # after the switch to summer time
    ("Tuesday, November 3, 2026, 2:05 PM", "2026-11-03T14:05:00+01:00"),
    ("3 November 2026, 14:05", "2026-11-03T14:05:00+01:00"),
    ("2026-11-03T14:05:00+00:00", "2026-11-03T14:05:00+00:00"),  # an offset given wins
    ("-", ""),
])
def test_moodle_userdate(text, iso):
    assert moodle_time(text, zone("Europe/Berlin")[0]) == iso


def test_fill_keeps_everything_else(tmp_path):
    sheet = read(write_sheet(tmp_path / "w.csv", [*SHEET, row(100005, "Locked Student", "l@example.edu", "-",
                                                              grade="55.00", changeable="No")]))
    data, warnings = fill(sheet, {"100001": ("6.4", "8"), "100002": ("8", "8"), "100005": ("4", "8")},
                          {"100002": "Submitted 1 day late: -10%"})
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == 5
    got = read_back_bytes(data)
    want = [HEADER, *[list(r) for r in sheet.rows]]
    want[1][4], want[2][4], want[4][4] = "80.00", "100.00", "50.00"
    want[2][10] = "Nice plots.\nSubmitted 1 day late: -10%"
    assert got == want  # row 100003 (no grade) exactly as downloaded
    assert any("8 -> 100" in w for w in warnings) and any("100005" in w and "cannot be changed" in w for w in warnings)
    comma = read(write_sheet(tmp_path / "c.csv", [[*SHEET[0][:5], "10,0", *SHEET[0][6:]]]))
    assert read_back_bytes(fill(comma, {"100001": ("7.5", "10")}, {})[0])[1][4] == "7,5"  # Moodle's decimals and comma


def read_back_bytes(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_whole_loop_late_policy_and_worksheet_back(tmp_path, download, capsys):
    """collect (worksheet, Berlin) -> a real lab00-setup grading with a deadline -> the worksheet filled back."""
    lab = tmp_path / "lab00-setup"
    shutil.copytree(LABS / "lab00-setup", lab)
    with open(lab / "lab.toml", "a") as f:
        f.write('\n[late]\ndeadline = "2026-11-03T23:59:00+00:00"\nper_day = 0.1\nmax_days = 3\n')
    solution = nbformat.writes(read_notebook(lab / "lab.ipynb")).encode()
    z = make_zip(tmp_path / "moodle.zip", {f"Nguyễn Văn A_100001{M}lab00-setup.ipynb": solution,
                                           f"Zoë Ångström_100002{M}Copy of lab00-setup.ipynb": solution})
    _, sheet = download
    subs, out = tmp_path / "subs", tmp_path / "out"
    assert cli(["collect", str(z), "--lms", "moodle", "--lab", str(lab), "--out", str(subs),
                "--worksheet", str(sheet), "--timezone", "Europe/Berlin"]) == 0
    assert cli(["grade", str(lab), str(subs), "--out", str(out), "--jobs", "2"]) == 0
    grades = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))}
    # 00:30 in Berlin is 23:30 UTC: on time; 11:00 in Berlin on the 5th is 2 days started late
    assert {s: float(r["score"]) for s, r in grades.items()} == {"100001": 8.0, "100002": pytest.approx(6.4)}
    record = json.loads((out / ".edgekit" / "records" / "100002.json").read_text())
    assert record["late"]["days"] == 2 and record["late"]["submitted_at"] == "2026-11-05T11:00:00+01:00"
    shutil.rmtree(subs)  # export finds the worksheet copy grade kept in OUT/.edgekit
    capsys.readouterr()
    assert cli(["export", str(out), "--lms", "moodle-worksheet"]) == 0
    std = capsys.readouterr()
    assert "3 students" in std.out and "Upload grading worksheet" in std.out and "100003" in std.err
    back, orig = read_back(out / "export-moodle-worksheet.csv"), read_back(sheet)
    assert back[0] == orig[0] == HEADER and len(back) == len(orig) == 4
    assert [r[:4] + r[5:10] for r in back] == [r[:4] + r[5:10] for r in orig]  # every other cell as downloaded
    assert [r[4] for r in back[1:]] == ["100.00", "80.00", ""]
    assert back[2][10].startswith("Nice plots.\nSubmitted 2 days late") and back[3] == orig[3]
    assert (out / "export-moodle-worksheet.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert cli(["export", str(out), "--lms", "moodle"]) == 0  # the e-mail keyed import now matches everyone
    emails = [r[0] for r in read_back(out / "export-moodle.csv")[1:]]
    assert sorted(emails) == ["jane@example.edu", "nguyen.a@example.edu", "zoe@example.edu"]


def test_export_without_a_worksheet_says_how_to_get_one(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text("student,score,max_score,status\n100001,8,8,graded\n")
    from edgekit._errors import ConfigError

    with pytest.raises(ConfigError, match="--worksheet"):
        export_grades(out, "moodle-worksheet")
    with pytest.raises(ConfigError, match="moodle-worksheet"):
        export_grades(out, "moodle", worksheet=tmp_path / "w.csv")


def test_force_merge_keeps_files_of_an_earlier_download(download, tmp_path):
    """A later download of the late submissions with the same worksheet: nobody's files are lost."""
    z, sheet = download
    subs = tmp_path / "subs"
    collect(z, "moodle", subs, "lab00-setup", worksheet=sheet, timezone="UTC")
    late = make_zip(tmp_path / "late.zip", {f"Doe, Jane _JD__100003{M}lab00-setup.ipynb": NB})
    collect(late, "moodle", subs, "lab00-setup", worksheet=sheet, timezone="UTC", force=True)
    rows = roster(subs)
    assert {i: r["files"] for i, r in rows.items()} == dict.fromkeys(["100001", "100002", "100003"], "lab00-setup.ipynb")
    assert "no submission" not in rows["100003"]["notes"] and rows["100003"]["email"] == "jane@example.edu"
    assert rows["100001"]["submitted_at"] == "2026-11-04T00:30:00+00:00" and (subs / "100001" / "lab00-setup.ipynb").is_file()


def test_a_scale_graded_worksheet_is_refused(tmp_path):
    header = [h if h != "Maximum Grade" else "Scale" for h in HEADER]
    path = tmp_path / "s.csv"
    path.write_text(",".join(header) + "\nParticipant 100001,A,a@example.edu,Submitted,,Good,Yes,-,,-,\n")
    with pytest.raises(LabError, match="scale"):
        fill(read(path), {"100001": ("8", "8")}, {})
