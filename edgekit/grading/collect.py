"""An LMS download (a zip or its folder) into ``SUBMISSIONS/<id>/<lab id>.ipynb`` and ``roster.csv``.

Per student the notebook graded becomes ``<lab id>.ipynb`` (the released name, which ``edgekit
grade`` looks for), chosen by: a name containing the lab id (``Copy of lab11-capstone (1).ipynb``),
then ``metadata.edgekit.lab``, then the only notebook; ties go to the newest resubmission (``-2``
over ``-1``, ``(2)`` over ``(1)``), then the latest time. Every other file is kept, unopened (a zip
stays a zip), under ``<id>/_other/`` with a note in ``roster.csv``.

The export is untrusted: a name with ``..``, an absolute path or a drive is never used as a path;
symlinks are neither followed nor created; the uncompressed total is capped (``max_bytes``); ids
become safe, distinct folder names (``-2``). Files of no student (unsafe names included) go to
``SUBMISSIONS/.unassigned/`` (``edgekit grade`` skips hidden folders) with a warning.

Rerunning into a non-empty SUBMISSIONS is refused unless ``force``, which merges: this export's
students get fresh folders and roster rows, the others stay (a later download of late submissions
adds to the first). A non-empty folder without ``roster.csv`` is never written into.

A Moodle zip has no e-mails and no times: its grading worksheet (``worksheet``, see
:mod:`.worksheet`) adds them by participant number, lists the participants who submitted nothing
(a roster row with no files, noted "no submission"), and is kept as ``.moodle-worksheet.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .._errors import LabError
from .._io import atomic_write
from .downloads import LAYOUTS, ExportFile, Student, attribute, read_export
from .worksheet import WORKSHEET, Person, zone
from .worksheet import people as worksheet_people
from .worksheet import read as read_worksheet

ROSTER = "roster.csv"
ROSTER_FIELDS = ["id", "name", "email", "submitted_at", "files", "notes"]
OTHER, UNASSIGNED = "_other", ".unassigned"
MAX_BYTES = 2 * 2**30
_RESERVED = {ROSTER, "grades.csv", OTHER}

_COPY = re.compile(r"(?:-(\d+)|\s*\((\d+)\))$")  # Canvas's "-2", a browser's " (2)"


@dataclass
class CollectResult:
    out: Path
    lab: str
    students: list[Student]
    warnings: list[str] = field(default_factory=list)
    timezone: str = ""  # the zone the worksheet's times were read in ("" without a worksheet)

    @property
    def without_notebook(self) -> list[str]:
        return [s.id for s in self.students if f"{self.lab}.ipynb" not in s.kept]

    def to_dict(self) -> dict:
        return {"schema": "edgekit.grading.collect/1", "out": str(self.out), "lab": self.lab,
                "students": [{"id": s.id, "name": s.name, "email": s.email, "submitted_at": s.submitted_at,
                              "kept": s.kept, "notes": s.notes} for s in self.students],
                "without_notebook": self.without_notebook, "timezone": self.timezone, "warnings": self.warnings}

    def __str__(self) -> str:
        missing = self.without_notebook
        return (f"collected {len(self.students)} students into {self.out} ({len(missing)} without a notebook"
                + (f": {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}" if missing else "")
                + f"); notes for every file not graded: {Path(self.out) / ROSTER}")


def collect(export: str | Path, lms: str, out: str | Path, lab: str, *, force: bool = False,
            max_bytes: int = MAX_BYTES, worksheet: str | Path | None = None,
            timezone: str | None = None) -> CollectResult:
    """Unpack ``export`` (zip or folder, in ``lms``'s layout) into ``out``; see the module's docstring.

    ``lab`` is a lab folder (``lab.toml``), an nbgrader source notebook, or a lab id. ``worksheet``
    (Moodle only) is its grading worksheet: e-mails and submission times (read in ``timezone``,
    default this machine's) are joined by participant number, and its participants without a
    submission get a roster row too. A copy is kept as ``out/.moodle-worksheet.csv`` for export.
    """
    if lms not in LAYOUTS:
        raise LabError(f"unknown LMS layout {lms!r}; expected one of {', '.join(LAYOUTS)}")
    if (worksheet or timezone) and lms != "moodle":
        raise LabError(f"--worksheet and --timezone are for Moodle's grading worksheet, not --lms {lms}; "
                       f"leave them out (or use --lms moodle with --worksheet)")
    if timezone and not worksheet:
        raise LabError("--timezone says which zone the worksheet's times are in; give --worksheet too")
    sheet = tz = zone_name = None
    if worksheet:
        sheet = read_worksheet(worksheet)
        tz, zone_name = zone(timezone)
        people = worksheet_people(sheet, tz)
    lab_id = _lab_id(lab)
    export, out = Path(export), Path(out)
    _check_out(export, out, force)
    files, warnings = read_export(export, max_bytes)
    students, unassigned = attribute(files, lms, warnings)
    if not students:
        sample = ", ".join(repr(f.path) for f in files[:3]) or "nothing"
        raise LabError(f"{export} does not look like a {lms} download: no entry named as {lms} names "
                       f"submissions (got {sample}); check --lms (one of {', '.join(LAYOUTS)})")
    if sheet is not None:
        _join(students, people, warnings)
    _assign_ids(students)
    fresh = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for s in students:
            if not s.files:  # in the worksheet only: a roster row, no folder
                continue
            folder = out / s.id
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
            elif folder.exists():
                shutil.rmtree(folder)
            _write_student(s, folder, lab_id)
        for f in unassigned:
            dest = _unique(out / UNASSIGNED / _clean(f.path).replace("/", "_"), set())
            _copy(f, dest)
            warnings.append(f"{f.path!r} belongs to no student: kept as {dest.relative_to(out).as_posix()}")
        _write_roster(out, students)
        if sheet is not None:
            atomic_write(out / WORKSHEET, sheet.path.read_bytes())
    except BaseException:
        if fresh:  # no half-collected folder left behind (a rerun would refuse it)
            shutil.rmtree(out, ignore_errors=True)
        raise
    return CollectResult(out, lab_id, students, warnings, zone_name or "")


def _join(students: list[Student], people: dict[str, Person], warnings: list[str]) -> None:
    """E-mail, name and submission time from the worksheet; its participants with no files become students."""
    by_id = {s.id: s for s in students}
    for pid, p in people.items():
        s = by_id.get(pid)
        if s is None:
            s = Student(pid, p.name, notes=["no submission"])
            students.append(s)
            if p.status and not p.status.casefold().startswith("no submission"):
                warnings.append(f"participant {pid} ({p.name}) has Moodle status {p.status!r} but no files in "
                                f"this download (an older download, or one merged into with --force?)")
        s.name, s.email, s.submitted_at = s.name or p.name, p.email, p.submitted_at
    absent = sorted(set(by_id) - set(people))
    if absent:
        warnings.append(f"not in the worksheet: participant(s) {', '.join(absent)} (no e-mail, no submission "
                        f"time); download the worksheet for all participants, not one group")


def _lab_id(lab: str) -> str:
    if Path(lab).exists():
        from .lab import load_lab

        return load_lab(lab).id
    if not re.fullmatch(r"[\w.-]+", lab) or lab.startswith("."):
        raise LabError(f"--lab {lab!r} is neither a lab folder nor a lab id; expected e.g. labs/lab11-capstone "
                       "or lab11-capstone")
    return lab


def _check_out(export: Path, out: Path, force: bool) -> None:
    e, o = export.resolve(), out.resolve()
    if o == e or e in o.parents or o in e.parents:
        raise LabError(f"--out {out} and the export {export} overlap; write the submissions to a folder of their own")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / ROSTER).is_file():
        raise LabError(f"{out} is not empty and has no {ROSTER}: collect did not write it; "
                       "give a new or empty folder as --out")
    if not force:
        raise LabError(f"{out} already holds collected submissions; use --force to merge this export into it "
                       "(its students' folders are replaced, the others kept), or give a new folder")


def _assign_ids(students: list[Student]) -> None:
    """Raw LMS ids into safe, distinct (also case-insensitively) folder names."""
    used: set[str] = set()
    for s in sorted(students, key=lambda s: s.id):
        raw = s.id
        safe = re.sub(r"[^A-Za-z0-9._@+-]+", "_", unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode())
        safe = safe.lstrip(".-_")[:80] or "student"
        if safe.casefold() in _RESERVED:
            safe = f"id-{safe}"
        candidate, n = safe, 1
        while candidate.casefold() in used:
            n += 1
            candidate = f"{safe}-{n}"
        if candidate != raw:
            s.notes.append(f"the LMS id {raw!r} is the folder {candidate!r}")
        used.add(candidate.casefold())
        s.id = candidate


# -- writing


def _write_student(s: Student, folder: Path, lab_id: str) -> None:
    folder.mkdir(parents=True)
    chosen, why = _choose(s.files, lab_id)
    taken: set[str] = set()
    for inner, f in sorted(s.files, key=lambda x: x[1] is not chosen):  # the graded notebook first
        if f is chosen:
            dest = folder / f"{lab_id}.ipynb"
            if inner != dest.name:
                s.notes.append(f"{inner} is graded as {dest.name} ({why})")
        else:
            dest = _unique(folder / OTHER / _clean(inner), taken)
            what = "not graded" if inner.lower().endswith(".ipynb") else "not a notebook"
            s.notes.append(f"{inner} {what}: kept as {dest.relative_to(folder).as_posix()}")
        _copy(f, dest)
        s.kept.append(dest.relative_to(folder).as_posix())
    if chosen is None:
        s.notes.append("no notebook (.ipynb) in the submission")


def _choose(files: list[tuple[str, ExportFile]], lab_id: str) -> tuple[ExportFile | None, str]:
    """The notebook to grade, by (name has the lab id, metadata says it, resubmission number, time), and why."""
    key = re.sub(r"[\s_]+", "-", lab_id.casefold())
    ranks = [((key in re.sub(r"[\s_]+", "-", PurePosixPath(i).name.casefold()), _says_lab(f, lab_id),
               _copy_number(PurePosixPath(i).stem), f.mtime), n)
             for n, (i, f) in enumerate(files) if i.lower().endswith(".ipynb")]
    if not ranks:
        return None, ""
    best, n = max(ranks)
    why = (f"its name has {lab_id}" if best[0] else f"its metadata says {lab_id}" if best[1]
           else "the only notebook" if len(ranks) == 1 else "the newest notebook")
    if len(ranks) > 1 and sum(r[:2] == best[:2] for r, _ in ranks) > 1:
        why += ", the newest of several"
    return files[n][1], why


def _copy_number(stem: str) -> int:
    m = _COPY.search(stem)
    return int(m[1] or m[2]) if m else 0


def _says_lab(f: ExportFile, lab_id: str) -> bool:
    if f.size > 64 * 2**20:
        return False
    try:
        with f.open() as fh:
            return json.loads(fh.read())["metadata"]["edgekit"]["lab"] == lab_id
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return False


def _clean(inner: str) -> str:
    parts = [re.sub(r"[\x00-\x1f;]", "_", p).encode()[:200].decode(errors="ignore")  # a file system's 255 bytes
             for p in inner.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "unnamed"


def _unique(dest: Path, taken: set[str]) -> Path:
    n, stem = 1, dest
    while str(dest).casefold() in taken or dest.exists():
        n += 1
        dest = stem.with_name(f"{stem.stem} ({n}){stem.suffix}")
    taken.add(str(dest).casefold())
    return dest


def _copy(f: ExportFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with f.open() as src, open(dest, "xb") as dst:  # "x": never through a file or link already there
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise LabError(f"{f.path!r} in the export is corrupt ({exc}); download the submissions again") from None


def _write_roster(out: Path, students: list[Student]) -> None:
    rows = {}
    if (out / ROSTER).is_file():
        with open(out / ROSTER, newline="", encoding="utf-8") as fh:
            rows = {r["id"]: {k: r.get(k) or "" for k in ROSTER_FIELDS} for r in csv.DictReader(fh) if r.get("id")}
    for s in students:
        if not s.files and rows.get(s.id, {}).get("files"):  # merged: files from an earlier download stay
            rows[s.id].update(name=rows[s.id]["name"] or s.name, email=s.email, submitted_at=s.submitted_at)
            continue
        rows[s.id] = {"id": s.id, "name": s.name, "email": s.email, "submitted_at": s.submitted_at,
                      "files": ";".join(s.kept), "notes": ";".join(n.replace(";", ",") for n in s.notes)}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ROSTER_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows[k] for k in sorted(rows))
    atomic_write(out / ROSTER, buf.getvalue())
