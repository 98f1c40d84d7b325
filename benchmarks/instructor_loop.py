"""The instructor's whole loop on a 200-student synthetic Moodle download of lab11, timed and checked.

    python benchmarks/instructor_loop.py [--students 200] [--jobs 2] [--out benchmarks/results/instructor_loop.json]

1. A Moodle "Download all submissions" zip and its grading worksheet are made up: fake names
   (some non-ASCII, two students with one name), a third each of reference, partial and stub
   answers, renamed notebooks (``lab11-capstone (1).ipynb``, ``Copy of lab11-capstone.ipynb``),
   ``Untitled.ipynb`` beside some, stray PDFs, students who submitted nothing, submission times
   around a deadline. lab11 is copied with a ``[late]`` policy added.
2. The five commands of the README's instructor section, each timed:
   ``edgekit collect`` (with the worksheet), ``edgekit grade``, the rubric (``writeup``) scored for
   every student through the gradebook — what ``edgekit review`` saves; the page itself is exercised
   by tests/test_browser_review.py and timed by benchmarks/review.py — ``edgekit similar`` and
   ``edgekit export`` in each format.
3. Checks, with the standard library as the oracle: every student of the worksheet is in
   roster.csv exactly once, every file of the zip is either the graded notebook or kept under
   ``_other/`` with a note, every export lists every student exactly once, its grades are those of
   grades.csv, late students lost what the policy says.

Prints the figures and writes them (with the checks' outcomes) to the JSON file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat

from edgekit.grading import gradebook, load_lab
from edgekit.grading.notebook import read_notebook, role

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labs" / "lab11-capstone"
RELEASED = ROOT / "notebooks" / "lab11-capstone" / "lab11-capstone.ipynb"
FIRST = ["Nguyễn Văn", "Zoë", "Ana", "Björn", "Chidi", "Mei", "Omar", "Priya", "Søren", "Lucía"]
LAST = ["A", "Ångström", "Silva", "Okafor", "Kowalski", "Tanaka", "Haddad", "Iyer", "Müller", "García"]
DEADLINE = datetime(2026, 11, 3, 23, 59, tzinfo=timezone.utc)
LATE = '\n[late]\ndeadline = "2026-11-03T23:59:00+00:00"\nper_day = 0.1\nmax_days = 3\n'


def notebooks() -> dict[str, bytes]:
    """Reference, partial and stub answers of lab11, as .ipynb bytes."""
    partial = json.loads((LAB / "fixtures" / "partial.json").read_text())
    nb = read_notebook(RELEASED)
    for cell in nb.cells:
        kind, qid = role(cell)
        if kind == "answer" and qid in partial:
            cell.source = partial[qid]
    return {"reference": nbformat.writes(read_notebook(LAB / "lab.ipynb")).encode(),
            "partial": nbformat.writes(nb).encode(), "stub": RELEASED.read_bytes()}


def synthesize(n: int, folder: Path) -> tuple[Path, Path, dict]:
    """The zip, the worksheet and what they hold (the truth the checks compare with)."""
    kinds = notebooks()
    truth: dict = {"students": {}, "files": 0}
    sheet = io.StringIO()
    w = csv.writer(sheet, lineterminator="\r\n")
    w.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
                "Last modified (submission)", "Online text", "Last modified (grade)", "Feedback comments"])
    zpath = folder / "moodle.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            pid = 300000 + i
            name = f"{FIRST[i % 10]} {LAST[(i // 10) % 10]}" if i != 1 else f"{FIRST[0]} {LAST[0]}"  # 0, 1: one name
            email = f"student{i:03d}@example.edu"
            submitted = i % 17 != 5
            hours = [-30, -2, 5, 30, 80][i % 5] if submitted else None  # on time, on time, 1, 2, 4 days late
            when = DEADLINE + timedelta(hours=hours) if submitted else None
            kind = ("reference", "partial", "stub")[i % 3]
            files = []
            if submitted:
                nbname = ["lab11-capstone.ipynb", "lab11-capstone (1).ipynb", "Copy of lab11-capstone.ipynb"][i % 3]
                files.append((nbname, kinds[kind]))
                if i % 7 == 0:
                    files.append(("Untitled.ipynb", kinds["stub"]))
                if i % 11 == 0:
                    files.append(("report.pdf", b"%PDF-1.4 synthetic"))
            for fname, data in files:
                z.writestr(f"{name}_{pid}_assignsubmission_file_/{fname}", data)
            truth["files"] += len(files)
            stamp = when.strftime("%A, %-d %B %Y, %-I:%M %p") if when else "-"
            w.writerow([f"Participant {pid}", name, email, "Submitted for grading" if submitted else "No submission",
                        "", "100.00", "Yes", stamp, "", "-", ""])
            late_days = max(0, -(-int((when - DEADLINE).total_seconds()) // 86400)) if when else 0
            truth["students"][str(pid)] = {"name": name, "email": email, "kind": kind if submitted else None,
                                           "late_days": late_days, "files": [f for f, _ in files]}
    wpath = folder / "grading-worksheet.csv"
    wpath.write_bytes(b"\xef\xbb\xbf" + sheet.getvalue().encode())
    return zpath, wpath, truth


def edgekit(*args: str) -> float:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"edgekit {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t


def read_csv(path: Path, skip: int = 0) -> list[dict]:
    text = path.read_bytes().decode("utf-8-sig")
    lines = text.splitlines(keepends=True)
    return list(csv.DictReader(io.StringIO("".join(lines[:1] + lines[1 + skip:]))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=200)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--out", default="benchmarks/results/instructor_loop.json")
    p.add_argument("--keep", help="keep the work folder here (default: a temporary folder, removed)")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="edgekit-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    lab = work / "lab11-capstone"
    shutil.copytree(LAB, lab, dirs_exist_ok=True)
    (lab / "lab.toml").write_text((LAB / "lab.toml").read_text() + LATE)
    zpath, wpath, truth = synthesize(args.students, work)
    subs, out = work / "submissions", work / "grades"
    times = {}
    times["collect"] = edgekit("collect", str(zpath), "--lms", "moodle", "--worksheet", str(wpath), "--timezone", "UTC",
                               "--lab", str(lab), "--out", str(subs), "--force")
    times["grade"] = edgekit("grade", str(lab), str(subs), "--out", str(out), "--jobs", str(args.jobs))
    t = time.perf_counter()
    the_lab = load_lab(lab)
    graded = [r["student"] for r in read_csv(out / "grades.csv")]
    for k, sid in enumerate(graded):  # what a TA's save in `edgekit review` does
        gradebook.set_score(out, sid, "writeup", [5, 3, 0][k % 3], f"rubric level {k % 3}", "ta", lab=the_lab)
    gradebook.regenerate(out, the_lab)
    times["rubric"] = time.perf_counter() - t
    times["similar"] = edgekit("similar", str(subs), "--lab", str(lab), "--out", str(work / "similar.html"))
    exports = {}
    for lms in ("moodle", "moodle-worksheet", "canvas", "csv"):
        to = work / f"export-{lms}.csv"
        times[f"export {lms}"] = edgekit("export", str(out), "--lms", lms, "--lab", str(lab), "--to", str(to))
        exports[lms] = to

    checks = check(truth, subs, out, exports)
    result = {"benchmark": "instructor_loop", "students": args.students, "jobs": args.jobs,
              "files_in_zip": truth["files"], "seconds": times, "checks": checks,
              "command": " ".join(["python", *sys.argv]), "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    for k, v in times.items():
        print(f"{k:>22}: {v:7.2f} s")
    for k, v in checks.items():
        print(f"{k:>22}: {v}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}" + (f"; work folder kept in {work}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    failed = [k for k, v in checks.items() if v is not True]
    if failed:
        raise SystemExit(f"checks failed: {', '.join(failed)}")


def check(truth: dict, subs: Path, out: Path, exports: dict[str, Path]) -> dict:
    students = truth["students"]
    roster = read_csv(subs / "roster.csv")
    ids = [r["id"] for r in roster]
    c: dict = {"roster: every student once": sorted(ids) == sorted(students)}
    by_id = {r["id"]: r for r in roster}
    kept = 0
    noted = True
    for sid, s in students.items():
        folder = subs / sid
        if not s["files"]:
            continue
        graded = folder / "lab11-capstone.ipynb"
        others = list((folder / "_other").glob("*")) if (folder / "_other").is_dir() else []
        kept += graded.is_file() + len(others)
        for f in others:
            noted &= f.name in by_id[sid]["notes"] or f.name in by_id[sid]["files"]
    c["every file kept (notebook or _other)"] = kept == truth["files"] or f"{kept} of {truth['files']}"
    c["every ignored file noted"] = noted
    c["emails from the worksheet"] = all(by_id[sid]["email"] == s["email"] for sid, s in students.items())
    grades = {r["student"]: r for r in read_csv(out / "grades.csv")}
    want_graded = {sid for sid, s in students.items() if s["kind"]}
    c["grades.csv: every submitter once"] = set(grades) == want_graded
    full = {sid for sid in want_graded if students[sid]["kind"] == "reference" and students[sid]["late_days"] == 0}
    c["on-time reference answers: 9 + rubric"] = all(float(grades[sid]["score"]) == 9 + float(grades[sid]["writeup"])
                                                     for sid in full)
    late_ok = True
    for sid in want_graded:
        days = students[sid]["late_days"]
        record = json.loads((out / ".edgekit" / "records" / f"{sid}.json").read_text())
        frac = 0.0 if days == 0 else 1.0 if days > 3 else round(0.1 * days, 6)
        auto = record.get("auto_score", record["score"])
        late_ok &= abs(float(grades[sid]["score"]) - round((auto + float(grades[sid]["writeup"])) * (1 - frac), 4)) < 1e-3
    c["late policy applied once"] = late_ok
    for lms, path in exports.items():
        skip = 1 if lms == "canvas" else 0  # Canvas: the "Points Possible" row under the header
        rows = read_csv(path, skip=skip)
        key = {"moodle": "Email address", "moodle-worksheet": "Identifier", "canvas": "ID", "csv": "id"}[lms]
        keys = [r.get(key, "") for r in rows]
        want = {"moodle": {s["email"] for s in students.values()},
                "moodle-worksheet": {f"Participant {sid}" for sid in students},
                "canvas": set(students), "csv": set(students)}[lms]
        c[f"export {lms}: every student once"] = (len(keys) == len(set(keys)) and set(keys) == want) or \
            f"{len(keys)} rows, {len(set(keys))} distinct, missing {sorted(want - set(keys))[:3]}, extra {sorted(set(keys) - want)[:3]}"
    return c


if __name__ == "__main__":
    main()
