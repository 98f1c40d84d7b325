"""Grades back to the LMS: ``OUT/grades.csv`` + the roster as the CSV an LMS's grade import takes.

    moodle   Grades > Import > CSV file. Columns ``Email address, Full name, <assignment>, Feedback``.
             On the import's mapping step set "Map from" to *Email address* and "Map to" to
             *useremail* (Moodle's default maps the first name to the user id), then map the
             ``<assignment>`` column to the assignment's grade item and ``Feedback`` to its feedback.
             Email, because a Moodle download names folders by a per-assignment participant number
             that the grade import cannot map.
    canvas   Grades > Import. Header ``Student,ID,SIS User ID,SIS Login ID,Section,<assignment>``,
             then the ``Points Possible`` row, as Canvas's own gradebook export. ``ID`` is the
             student id when it is a number (Canvas's user id, as its submission download names
             files); ``SIS User ID``, ``SIS Login ID`` and ``Section`` come from roster columns
             ``sis_user_id``, ``sis_login_id`` and ``section`` when it has them. Name the assignment
             as Canvas's export does (``--assignment "Lab 11 (4821)"``) to update that assignment; any
             other name makes a new one.
    csv      ``id,name,email,score,max_score,late,status`` (late: days after the deadline).
    moodle-worksheet
             The assignment's grading worksheet (``edgekit collect --worksheet`` keeps a copy) with
             ``Grade`` (scaled to its ``Maximum Grade``) and ``Feedback comments`` filled: upload it
             with the Grading action "Upload grading worksheet". Keyed by participant number, so no
             e-mails needed; every row and column stays as downloaded, ungraded rows untouched.

Every student appears once: the roster's in its order, then graded students it lacks (a warning).
A student with no grade (not submitted, refused, not graded) has an empty grade cell, never a 0:
both imports leave an empty cell alone. The roster is ``SUBMISSIONS/roster.csv`` (``edgekit
collect`` writes it; ``edgekit grade`` keeps a copy in ``OUT/.edgekit/``). Rubric scores in
``OUT/gradebook.sqlite`` are merged into ``grades.csv`` first when edgekit has the gradebook.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ConfigError
from .._io import atomic_write
from .gradebook import batch_info, records_dir, regenerate
from .lab import Lab, load_lab
from .late import read_roster

FORMATS = ("moodle", "canvas", "csv", "moodle-worksheet")
GRADED = ("graded",)  # statuses whose missing score would be a surprise; others say why there is none


@dataclass
class Export:
    """What :func:`export_grades` wrote: the file, and the students that need a look."""

    path: Path
    lms: str
    students: int
    ungraded: list[str] = field(default_factory=list)  # in the roster, no grade: an empty cell
    unknown: list[str] = field(default_factory=list)  # graded, not in the roster
    warnings: list[str] = field(default_factory=list)


def export_grades(out: str | Path, lms: str, *, submissions: str | Path | None = None, to: str | Path | None = None,
                  lab=None, assignment: str | None = None, worksheet: str | Path | None = None) -> Export:
    """Write ``OUT/grades.csv`` as ``lms``'s grade import file (default ``OUT/export-<lms>.csv``).

    ``worksheet`` (moodle-worksheet only): the downloaded worksheet to fill, by default the copy
    ``edgekit collect`` kept in SUBMISSIONS (``edgekit grade`` copies it to ``OUT/.edgekit``)."""
    if lms not in FORMATS:
        raise ConfigError(f"--lms {lms!r}: expected one of {', '.join(FORMATS)}")
    if worksheet and lms != "moodle-worksheet":
        raise ConfigError(f"--worksheet is the Moodle grading worksheet to fill; it goes with --lms moodle-worksheet, "
                          f"not --lms {lms}")
    out = Path(out)
    _regenerate(out, lab)
    grades = _read_grades(out / "grades.csv")
    if lms == "moodle-worksheet":
        return _to_worksheet(out, grades, submissions, to, worksheet)
    roster_path = Path(submissions) / "roster.csv" if submissions else out / ".edgekit" / "roster.csv"
    if not roster_path.is_file():
        raise ConfigError(f"no roster at {roster_path}: export needs names and emails from SUBMISSIONS/roster.csv "
                          f"(written by `edgekit collect`); pass --submissions SUBMISSIONS")
    roster = read_roster(roster_path)
    name = assignment or _lab_id(out) or out.resolve().name
    rows, res = [], Export(Path(to) if to else out / f"export-{lms}.csv", lms, 0)
    for sid in [*roster, *sorted(set(grades) - set(roster))]:
        person, g = roster.get(sid, {}), grades.get(sid, {})
        score = g.get("score", "")
        if sid not in roster:
            res.unknown.append(sid)
        elif score == "":
            res.ungraded.append(sid)
        late = _late(out, sid)
        rows.append({**person, "id": sid, "name": person.get("name", ""), "email": person.get("email", ""),
                     "score": score, "max_score": g.get("max_score", ""), "status": g.get("status", "not submitted"),
                     "late": str(late.get("days", "")), "note": late.get("note", "")})
    res.students = len(rows)
    maxes = {r["max_score"] for r in rows if r["max_score"]}
    if len(maxes) > 1:
        res.warnings.append(f"grades.csv has several max_score values ({', '.join(sorted(maxes))}); using the largest")
    points = max(maxes, key=float, default="")
    text = {"moodle": _moodle, "canvas": _canvas, "csv": _plain}[lms](rows, name, points)
    atomic_write(res.path, text)
    if res.ungraded:
        res.warnings.append(f"no grade (empty cell, not 0) for {len(res.ungraded)} student(s) in the roster: "
                            + ", ".join(res.ungraded))
    if res.unknown:
        res.warnings.append(f"graded but not in {roster_path}: {', '.join(res.unknown)} "
                            f"(no name or email: the LMS may not match them)")
    noemail = [r["id"] for r in rows if not r["email"]]
    if lms == "moodle" and noemail:
        res.warnings.append(f"no email for {', '.join(noemail)}: Moodle's import cannot match these rows")
    return res


def _to_worksheet(out: Path, grades: dict[str, dict], submissions, to, worksheet) -> Export:
    from . import worksheet as ws

    src = Path(worksheet) if worksheet else (Path(submissions) if submissions else out / ".edgekit") / ws.WORKSHEET
    if not src.is_file():
        raise ConfigError(f"no grading worksheet at {src}: collect with `edgekit collect ... --worksheet FILE` "
                          f"(then grade), or pass the downloaded worksheet with --worksheet FILE")
    sheet = ws.read(src)
    ids = sheet.ids()
    marks = {sid: (g["score"], g.get("max_score", "")) for sid, g in grades.items() if g.get("score", "") != ""}
    notes = {sid: _feedback({"note": _late(out, sid).get("note", ""), "status": g.get("status", "")})
             for sid, g in grades.items() if sid in marks}
    data, warnings = ws.fill(sheet, marks, notes)
    res = Export(Path(to) if to else out / "export-moodle-worksheet.csv", "moodle-worksheet", len(ids),
                 ungraded=[i for i in ids if i not in marks], unknown=sorted(set(grades) - set(ids)), warnings=warnings)
    atomic_write(res.path, data)
    if res.ungraded:
        res.warnings.append(f"no grade for {len(res.ungraded)} participant(s): their rows stay as downloaded: "
                            + ", ".join(res.ungraded))
    if res.unknown:
        res.warnings.append(f"graded but not in the worksheet {src}: {', '.join(res.unknown)} (not uploaded; "
                            f"was the worksheet downloaded for one group only?)")
    return res


def _regenerate(out: Path, lab) -> None:
    """Merge the rubric scores (``OUT/gradebook.sqlite``, from ``edgekit review``) into every file first;
    the lab defaults to the one ``edgekit grade`` recorded in ``OUT/.edgekit/batch.json``."""
    if not (out / "gradebook.sqlite").is_file():
        return
    lab = lab or batch_info(out).get("lab")
    if lab is None:
        raise ConfigError(f"{out / 'gradebook.sqlite'} holds rubric scores to merge before exporting, and {out} does "
                          f"not say which lab it graded (no .edgekit/batch.json); pass the lab too (--lab LAB)")
    regenerate(out, lab if isinstance(lab, Lab) else load_lab(lab))


def _read_grades(path: Path) -> dict[str, dict]:
    if not path.is_file():
        raise ConfigError(f"no grades at {path}: run `edgekit grade LAB SUBMISSIONS --out {path.parent}` first")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"student", "score", "max_score"} <= set(reader.fieldnames or []):
            raise ConfigError(f"{path}: expected columns student,score,max_score,...; got {reader.fieldnames}")
        return {r["student"]: r for r in reader}


def _record(out: Path, sid: str) -> dict:
    try:
        return json.loads((records_dir(out) / f"{sid}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _late(out: Path, sid: str) -> dict:
    late = _record(out, sid).get("late")
    return late if isinstance(late, dict) else {}


def _lab_id(out: Path) -> str | None:
    for p in sorted(records_dir(out).glob("*.json")):
        lab = _record(out, p.stem).get("lab")
        if lab:
            return str(lab)
    return None


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180, as the LMSs write theirs
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _feedback(r: dict) -> str:
    parts = [r["note"]] if r["note"] else []
    if r["status"] not in GRADED:
        parts.append(f"status: {r['status']}")
    return " ".join(parts)


def _moodle(rows: list[dict], name: str, points: str) -> str:
    return _csv(["Email address", "Full name", name, "Feedback"],
                [[r["email"], r["name"], r["score"], _feedback(r)] for r in rows])


def _canvas(rows: list[dict], name: str, points: str) -> str:
    body = [["Points Possible", "", "", "", "", points]]
    body += [[r["name"] or r["id"], r["id"] if r["id"].isdigit() else "", r.get("sis_user_id", ""),
              r.get("sis_login_id", ""), r.get("section", ""), r["score"]] for r in rows]
    return _csv(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", name], body)


def _plain(rows: list[dict], name: str, points: str) -> str:
    return _csv(["id", "name", "email", "score", "max_score", "late", "status"],
                [[r["id"], r["name"], r["email"], r["score"], r["max_score"], r["late"], r["status"]] for r in rows])
