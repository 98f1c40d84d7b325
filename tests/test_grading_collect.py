"""edgekit collect: synthetic LMS downloads (Moodle, Canvas, Gradescope, a folder) in, SUBMISSIONS + roster.csv out.

The exports are built here from compact descriptions, in each LMS's documented naming (see the
docstring of edgekit/grading/collect.py); the oracle is the stdlib: zipfile for what went in,
csv.DictReader for the roster, the bytes on disk for what came out.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from edgekit._errors import LabError, MissingExtraError
from edgekit.cli.main import main as cli
from edgekit.grading.collect import ROSTER_FIELDS, collect

LAB = "lab11-capstone"


def nb(tag: str, lab: str | None = None) -> bytes:
    """A minimal notebook; ``tag`` makes its bytes unique so we can find where it went."""
    meta = {"edgekit": {"lab": lab, "release": 1}} if lab else {}
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": meta,
                       "cells": [{"cell_type": "code", "id": "a", "metadata": {}, "source": f"# {tag}",
                                  "outputs": [], "execution_count": None}]}).encode()


def make_zip(path: Path, entries: dict[str, bytes], times: dict[str, tuple] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zi = zipfile.ZipInfo(name, (times or {}).get(name, (2026, 11, 3, 12, 0, 0)))
            zf.writestr(zi, data)
    return path


def roster(out: Path) -> dict[str, dict]:
    with open(out / "roster.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ROSTER_FIELDS
        return {r["id"]: r for r in reader}


def digests(root: Path) -> Counter:
    return Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
                   if p.is_file() and p.name != "roster.csv")


def every_file_kept(entries: dict[str, bytes], out: Path) -> None:
    """Each input file's bytes are somewhere under SUBMISSIONS, and nothing else is."""
    assert digests(out) == Counter(hashlib.sha256(b).hexdigest() for b in entries.values())


def notes(row: dict) -> list[str]:
    return row["notes"].split(";") if row["notes"] else []


# -- Moodle ------------------------------------------------------------------------------------------------

M = "_assignsubmission_file_/"
MOODLE = {
    # renamed notebook, Untitled beside it, a stray PDF, the online text; non-ASCII name
    f"Nguyễn Văn A_100001{M}lab11-capstone (1).ipynb": nb("a-graded"),
    f"Nguyễn Văn A_100001{M}Untitled.ipynb": nb("a-untitled"),
    f"Nguyễn Văn A_100001{M}report.pdf": b"%PDF-1.4 a",
    "Nguyễn Văn A_100001_assignsubmission_onlinetext_/onlinetext.html": b"<p>hello</p>",
    # a resubmission: the (2) is newer
    f"Zoë Ångström_100002{M}lab11-capstone.ipynb": nb("zoe-old"),
    f"Zoë Ångström_100002{M}lab11-capstone (2).ipynb": nb("zoe-new"),
    # two students with the same name, told apart by id; one picked by metadata only
    f"Test Student_100003{M}Untitled1.ipynb": nb("t3-meta", lab=LAB),
    f"Test Student_100003{M}scratch.ipynb": nb("t3-scratch"),
    f"Test Student_100004{M}sub/Copy of LAB11_capstone.ipynb": nb("t4-graded"),
    # no notebook at all: a zip stays a zip
    f"Late Person_100005{M}lab11.zip": b"PK\x05\x06" + b"\0" * 18,
    # hostile entries: outside the export, and junk at the top
    "../evil.ipynb": nb("evil"),
    "/abs/evil2.txt": b"evil2",
    "README.txt": b"not a submission",
}


@pytest.fixture
def moodle(tmp_path):
    times = {f"Zoë Ångström_100002{M}lab11-capstone.ipynb": (2026, 11, 1, 9, 0, 0)}
    return make_zip(tmp_path / "moodle.zip", MOODLE, times)


def test_moodle_download(moodle, tmp_path):
    out = tmp_path / "subs"
    res = collect(moodle, "moodle", out, LAB)
    rows = roster(out)
    assert sorted(rows) == ["100001", "100002", "100003", "100004", "100005"]
    assert rows["100001"]["name"] == "Nguyễn Văn A" and rows["100001"]["email"] == "" == rows["100001"]["submitted_at"]
    assert rows["100003"]["name"] == rows["100004"]["name"] == "Test Student"
    graded = {sid: (out / sid / f"{LAB}.ipynb").read_bytes() for sid in rows if sid != "100005"}
    assert graded == {"100001": nb("a-graded"), "100002": nb("zoe-new"), "100003": nb("t3-meta", lab=LAB),
                      "100004": nb("t4-graded")}
    a = rows["100001"]
    assert a["files"].split(";") == [f"{LAB}.ipynb", "_other/Untitled.ipynb", "_other/report.pdf",
                                     "_other/onlinetext.html"]
    assert (out / "100001" / "_other" / "report.pdf").read_bytes() == b"%PDF-1.4 a"
    assert any("lab11-capstone (1).ipynb is graded as" in n for n in notes(a))
    assert any(n.startswith("Untitled.ipynb not graded") for n in notes(a))
    assert any(n.startswith("report.pdf not a notebook") for n in notes(a))
    assert any("metadata says" in n for n in notes(rows["100003"]))
    assert "no notebook (.ipynb) in the submission" in notes(rows["100005"])
    assert res.without_notebook == ["100005"]
    for sid, row in rows.items():  # every file not graded has its note
        others = [f for f in row["files"].split(";") if f.startswith("_other/")]
        assert len(others) == sum("kept as _other/" in n for n in notes(row)), sid
    every_file_kept(MOODLE, out)
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/abs/evil2.txt").exists()
    assert sorted(p.name for p in (out / ".unassigned").iterdir()) == ["README.txt", "abs_evil2.txt", "evil.ipynb"]
    assert sum("unsafe path" in w for w in res.warnings) == 2


def test_moodle_flat_and_wrapped_in_a_folder(tmp_path):
    entries = {"download/Nguyễn Văn A_100001_assignsubmission_file_lab11-capstone.ipynb": nb("flat-a"),
               "download/Nguyễn Văn A_100001_assignsubmission_file_notes.txt": b"n",
               "download/Zoë Ångström_100002_assignsubmission_file_Untitled.ipynb": nb("flat-z")}
    out = tmp_path / "subs"
    collect(make_zip(tmp_path / "m.zip", entries), "moodle", out, LAB)
    rows = roster(out)
    assert rows["100001"]["files"] == f"{LAB}.ipynb;_other/notes.txt"
    assert (out / "100002" / f"{LAB}.ipynb").read_bytes() == nb("flat-z")  # the only notebook
    every_file_kept(entries, out)


# -- Canvas ------------------------------------------------------------------------------------------------

CANVAS = {
    "nguyenvana_12345_678_lab11-capstone.ipynb": nb("c-a"),
    "nguyenvana_12345_679_Untitled.ipynb": nb("c-a-untitled"),
    "ångströmzoë_LATE_23456_680_lab11-capstone.ipynb": nb("c-z-old"),
    "ångströmzoë_LATE_23456_681_lab11-capstone-1.ipynb": nb("c-z-new"),  # re-uploaded: Canvas adds -1
    "smithj_34567_682_report.pdf": b"%PDF c",
    "smithj_34567_683_lab11_capstone.ipynb": nb("c-s"),
    "smithj_34567_text.html": b"<p>online text</p>",
    "anon_x7Kq2_684_lab11-capstone.ipynb": nb("c-anon"),
    "../evil": b"evil",
}


def test_canvas_download(tmp_path):
    out = tmp_path / "subs"
    res = collect(make_zip(tmp_path / "c.zip", CANVAS), "canvas", out, LAB)
    rows = roster(out)
    assert sorted(rows) == ["12345", "23456", "34567", "anon_x7Kq2"]
    assert rows["23456"]["name"] == "ångströmzoë"
    assert (out / "23456" / f"{LAB}.ipynb").read_bytes() == nb("c-z-new")
    assert any("marked it late" in n for n in notes(rows["23456"]))
    assert not any("late" in n for n in notes(rows["12345"]))
    assert (out / "34567" / f"{LAB}.ipynb").read_bytes() == nb("c-s")
    assert rows["34567"]["files"] == f"{LAB}.ipynb;_other/report.pdf;_other/text.html"
    assert (out / "12345" / "_other" / "Untitled.ipynb").read_bytes() == nb("c-a-untitled")
    every_file_kept(CANVAS, out)
    unsafe = "'../evil' has an unsafe path (outside the export): not attributed to a student"
    assert [w for w in res.warnings if "unsafe" in w] == [unsafe]


# -- Gradescope --------------------------------------------------------------------------------------------

GS_META = """\
submission_1001:
  :submitters:
  - :name: Nguyễn Văn A
    :sid: '20260001'
    :email: a@example.edu
  :created_at: 2026-11-03 14:05:00.123456000 -08:00
  :score: 0.0
submission_1002:
  :submitters:
  - :name: Zoë Ångström
    :sid: '20260002'
    :email: zoe@example.edu
  - :name: Test Student
    :sid: ''
    :email: test@example.edu
  :created_at: 2026-11-04 09:00:00.000000000 +00:00
"""
GS = {
    "assignment_77_export/submission_metadata.yml": GS_META.encode(),
    "assignment_77_export/submission_1001/lab11-capstone (1).ipynb": nb("g-a"),
    "assignment_77_export/submission_1001/Untitled.ipynb": nb("g-a-untitled"),
    "assignment_77_export/submission_1001/plot.png": b"\x89PNG a",
    "assignment_77_export/submission_1002/work/final.ipynb": nb("g-group", lab=LAB),
    "assignment_77_export/submission_1003/lab11-capstone.ipynb": nb("g-unlisted"),
}


def test_gradescope_export(tmp_path):
    out = tmp_path / "subs"
    collect(make_zip(tmp_path / "g.zip", GS), "gradescope", out, LAB)
    rows = roster(out)
    assert sorted(rows) == ["20260001", "20260002", "submission_1003", "test@example.edu"]
    a = rows["20260001"]
    assert (a["name"], a["email"], a["submitted_at"]) == ("Nguyễn Văn A", "a@example.edu", "2026-11-03T14:05:00-08:00")
    assert a["files"] == f"{LAB}.ipynb;_other/Untitled.ipynb;_other/plot.png"
    for sid in ("20260002", "test@example.edu"):  # a group submission: each member gets it
        assert (out / sid / f"{LAB}.ipynb").read_bytes() == nb("g-group", lab=LAB)
        assert rows[sid]["submitted_at"] == "2026-11-04T09:00:00+00:00"
        assert any(n.startswith("group submission submission_1002") for n in notes(rows[sid]))
    assert any("not in submission_metadata.yml" in n for n in notes(rows["submission_1003"]))
    kept = digests(out)
    assert set(kept) == {hashlib.sha256(b).hexdigest() for b in GS.values()}  # nothing lost (the group's twice)
    assert (out / ".unassigned" / "submission_metadata.yml").is_file()


def test_gradescope_without_pyyaml_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(MissingExtraError, match=r"edgekit\[lab\]"):
        collect(make_zip(tmp_path / "g.zip", GS), "gradescope", tmp_path / "subs", LAB)


# -- a plain folder ----------------------------------------------------------------------------------------


def test_folder_export_keeps_files_and_skips_symlinks(tmp_path):
    src = tmp_path / "export"
    files = {"alice/lab11-capstone-Copy1.ipynb": nb("f-a"), "alice/data/x.csv": b"1,2",
             "bob smith/Untitled.ipynb": nb("f-b"), "loose.txt": b"loose"}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    os.symlink("/etc/passwd", src / "alice" / "passwd.ipynb")
    out = tmp_path / "subs"
    res = collect(src, "folder", out, LAB)
    rows = roster(out)
    assert sorted(rows) == ["alice", "bob_smith"]
    assert (out / "alice" / f"{LAB}.ipynb").read_bytes() == nb("f-a")
    assert rows["alice"]["files"] == f"{LAB}.ipynb;_other/data/x.csv"
    assert any("'bob smith'" in n for n in notes(rows["bob_smith"]))
    assert any("passwd.ipynb" in w and "symbolic link" in w for w in res.warnings)
    assert not any(p.is_symlink() for p in out.rglob("*"))
    every_file_kept(files, out)


# -- safety, reruns, errors --------------------------------------------------------------------------------


def test_size_cap_refuses_a_bomb(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", {f"A_1{M}big.bin": b"\0" * 3_000_000})
    with pytest.raises(LabError, match="zip bomb"):
        collect(z, "moodle", tmp_path / "subs", LAB, max_bytes=1_000_000)
    assert not (tmp_path / "subs").exists()


def test_zip_symlink_entry_is_not_created(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"A_1{M}lab11-capstone.ipynb", nb("a"))
        link = zipfile.ZipInfo(f"A_1{M}passwd")
        link.external_attr = (0o120777 << 16)  # a symlink, as `zip --symlinks` stores one
        zf.writestr(link, "/etc/passwd")
    res = collect(z, "moodle", tmp_path / "subs", LAB)
    assert [p.name for p in (tmp_path / "subs" / "1").rglob("*")] == [f"{LAB}.ipynb"]
    assert any("passwd" in w and "symbolic link" in w for w in res.warnings)


def test_rerun_refused_then_merged_with_force(moodle, tmp_path):
    out = tmp_path / "subs"
    collect(moodle, "moodle", out, LAB)
    with pytest.raises(LabError, match="--force"):
        collect(moodle, "moodle", out, LAB)
    late = make_zip(tmp_path / "late.zip", {f"Late Person_100005{M}lab11-capstone.ipynb": nb("late-fixed"),
                                            f"New Person_100009{M}lab11-capstone.ipynb": nb("new")})
    collect(late, "moodle", out, LAB, force=True)
    rows = roster(out)
    assert sorted(rows) == ["100001", "100002", "100003", "100004", "100005", "100009"]
    assert rows["100005"]["files"] == f"{LAB}.ipynb" and not notes(rows["100005"])
    assert not (out / "100005" / "_other").exists()  # the old folder was replaced, not added to
    assert (out / "100001" / "_other" / "report.pdf").is_file()  # the others kept


def test_foreign_folder_is_never_written(moodle, tmp_path):
    out = tmp_path / "subs"
    (out / "mine").mkdir(parents=True)
    with pytest.raises(LabError, match="collect did not write it"):
        collect(moodle, "moodle", out, LAB, force=True)
    assert [p.name for p in out.iterdir()] == ["mine"]


def test_wrong_layout_says_so(tmp_path):
    with pytest.raises(LabError, match="does not look like a moodle download.*--lms"):
        collect(make_zip(tmp_path / "c.zip", CANVAS), "moodle", tmp_path / "subs", LAB)


def test_cli(moodle, tmp_path, capsys):
    out = tmp_path / "subs"
    assert cli(["collect", str(moodle), "--lms", "moodle", "--lab", LAB, "--out", str(out)]) == 0
    got = capsys.readouterr()
    assert "collected 5 students" in got.out and "1 without a notebook: 100005" in got.out
    assert "unsafe path" in got.err
    assert cli(["collect", str(moodle), "--lms", "moodle", "--lab", LAB, "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("edgekit: error: ")


def test_collected_moodle_download_grades(tmp_path):
    """Collect a Moodle zip of the demo lab's released notebook (renamed, Untitled beside it), then grade it."""
    demo = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
    assert cli(["lab", "release", str(demo), "--out", str(tmp_path / "rel")]) == 0
    released = (tmp_path / "rel" / "lab00-demo" / "lab00-demo.ipynb").read_bytes()
    z = make_zip(tmp_path / "m.zip", {f"Zoë Ångström_7{M}lab00-demo (1).ipynb": released,
                                      f"Zoë Ångström_7{M}Untitled.ipynb": nb("u")})
    assert cli(["collect", str(z), "--lms", "moodle", "--lab", str(demo), "--out", str(tmp_path / "subs")]) == 0
    assert cli(["grade", str(demo), str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert [(r["student"], r["status"], r["score"]) for r in rows] == [("7", "graded", "0")]
    record = json.loads((tmp_path / "out" / ".edgekit" / "records" / "7.json").read_text())
    assert "not graded, set aside when your submission was collected: Untitled.ipynb" in record["notes"]
