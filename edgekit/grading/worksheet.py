"""Moodle's offline grading worksheet: emails and submission times in, grades back out.

A Moodle "Download all submissions" zip names folders by a participant number and carries
neither e-mails nor times. The assignment's "Download grading worksheet" (Grading action menu;
the *Offline grading worksheet* feedback plugin) is a CSV with both, one row per participant::

    Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,
    Last modified (submission),Last modified (grade),Feedback comments
    Participant 100001,Nguyễn Văn A,a@example.edu,Submitted for grading,,100.00,Yes,
    "Tuesday, 3 November 2026, 2:05 PM",-,

``Identifier`` is the zip's participant number; dates are Moodle's ``userdate()`` in the
downloading user's time zone without an offset (``-`` when none), so :func:`people` needs the
zone. :func:`fill` writes the same file back with ``Grade`` (and ``Feedback comments``) filled:
what "Upload grading worksheet" takes. Moodle's importer finds its columns by these English
headers, so download the worksheet with Moodle's language set to English.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from .._errors import LabError

WORKSHEET = ".moodle-worksheet.csv"  # the copy collect keeps in SUBMISSIONS and grade in OUT/.edgekit
ID, NAME, EMAIL, STATUS, GRADE = "Identifier", "Full name", "Email address", "Status", "Grade"
MAXGRADE, CHANGEABLE, SUBMITTED, FEEDBACK = ("Maximum Grade", "Grade can be changed", "Last modified (submission)",
                                             "Feedback comments")
EXAMPLE = "Tuesday, 3 November 2026, 2:05 PM"
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_TIME = r",?\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?"
_DATES = [re.compile(r"^(?:[^\W\d]+,?\s+)?(?P<d>\d{1,2})\.?\s+(?P<mo>[^\W\d]+)\.?,?\s+(?P<y>\d{4})" + _TIME + "$"),
          re.compile(r"^(?:[^\W\d]+,?\s+)?(?P<mo>[^\W\d]+)\.?\s+(?P<d>\d{1,2}),?\s+(?P<y>\d{4})" + _TIME + "$")]


@dataclass
class Person:
    """One worksheet row: the participant number and what Moodle says of them."""

    id: str
    name: str
    email: str
    submitted_at: str  # ISO 8601 with offset, "" when Moodle has none
    status: str


@dataclass
class Worksheet:
    """The file as downloaded: header, rows (with their line numbers), BOM and line ending kept."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    bom: bool
    newline: str

    def col(self, name: str) -> int | None:
        return self.header.index(name) if name in self.header else None

    def cell(self, row: list[str], name: str) -> str:
        i = self.col(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    def ids(self) -> list[str]:
        """The participant number of every row, in order; a row without one is an error naming its line."""
        out = []
        for row, line in zip(self.rows, self.lines):
            m = re.search(r"(\d+)\s*$", self.cell(row, ID))
            if m is None:
                raise LabError(f"{self.path} line {line}: {ID} {self.cell(row, ID)!r} has no participant number; "
                               f"expected e.g. 'Participant 100001' as Moodle writes it")
            out.append(m[1])
        return out


def read(path: str | Path) -> Worksheet:
    """A downloaded worksheet; a file that is not one says what it lacks."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LabError(f"cannot read the grading worksheet {path} ({exc.strerror}); give the CSV from the "
                       f"assignment's Grading action 'Download grading worksheet'") from None
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabError(f"{path} is not UTF-8 (byte {exc.start}); download the worksheet again from Moodle, "
                       f"or save it as 'CSV UTF-8' if a spreadsheet opened it") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    rows, lines = [], []
    for row in reader:
        if any(c.strip() for c in row):
            rows.append(row)
            lines.append(reader.line_num)
    ws = Worksheet(path, header, rows, lines, bom, "\r\n" if "\r\n" in text else "\n")
    missing = [c for c in (ID, GRADE) if c not in header]
    if missing:
        raise LabError(f"{path} is not a Moodle grading worksheet: no column {' or '.join(map(repr, missing))} "
                       f"(header: {', '.join(header[:6]) or 'none'}); download it from the assignment's Grading "
                       f"action 'Download grading worksheet' with Moodle's language set to English")
    seen: dict[str, int] = {}
    for pid, line in zip(ws.ids(), lines):
        if pid in seen:
            raise LabError(f"{path} line {line}: participant {pid} again (first on line {seen[pid]}); "
                           f"keep one row per participant")
        seen[pid] = line
    return ws


def zone(name: str | None) -> tuple[tzinfo | None, str]:
    """``(tzinfo, its name)`` for ``--timezone``; ``(None, name)`` is this machine's local zone."""
    if not name:
        local = os.environ.get("TZ", "").lstrip(":") or os.path.realpath("/etc/localtime").partition("zoneinfo/")[2]
        return None, f"{local or time.tzname[0]} (this machine's local zone)"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise LabError(f"--timezone {name!r} is not a time zone name; expected one like Europe/Berlin or "
                       f"America/New_York (the zone of the Moodle user who downloaded the worksheet)") from None


def moodle_time(text: str, tz: tzinfo | None) -> str:
    """Moodle's ``userdate()`` (``Tuesday, 3 November 2026, 2:05 PM``; ``-`` for none) in ``tz`` as ISO 8601
    with its offset (``""`` for none); ValueError when it is neither that nor ISO 8601."""
    text = text.strip()
    if text in ("", "-"):
        return ""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        m = next((m for p in _DATES if (m := p.match(text))), None)
        months = [i for i, mo in enumerate(_MONTHS, 1) if m and m["mo"].casefold().startswith(mo)]
        if m is None or not months:
            raise ValueError(text) from None
        hour = int(m["h"])
        if m["ampm"]:
            if not 1 <= hour <= 12:
                raise ValueError(text) from None
            hour = hour % 12 + (12 if m["ampm"][0] in "Pp" else 0)
        t = datetime(int(m["y"]), months[0], int(m["d"]), hour, int(m["mi"]), int(m["s"] or 0))
    if t.utcoffset() is None:
        t = t.replace(tzinfo=tz) if tz is not None else t.astimezone()  # naive astimezone(): local, with its DST
    return t.isoformat(timespec="seconds")


def people(ws: Worksheet, tz: tzinfo | None) -> dict[str, Person]:
    """Every row as a :class:`Person` keyed by participant number; a date that cannot be read names its line."""
    out = {}
    for pid, row, line in zip(ws.ids(), ws.rows, ws.lines):
        when = ws.cell(row, SUBMITTED)
        try:
            at = moodle_time(when, tz)
        except ValueError:
            raise LabError(f"{ws.path} line {line}: {SUBMITTED} {when!r} is not a date Moodle writes in English "
                           f"(expected e.g. {EXAMPLE!r}, or '-'); download the worksheet with Moodle's language "
                           f"set to English, or fix that cell") from None
        out[pid] = Person(pid, ws.cell(row, NAME), ws.cell(row, EMAIL), at, ws.cell(row, STATUS))
    return out


def _number(text: str) -> tuple[float, int, str] | None:
    """A Moodle ``format_float`` cell (``100.00``, ``100,00``) as (value, decimals, separator)."""
    m = re.fullmatch(r"\s*(\d+)(?:([.,])(\d+))?\s*", text)
    return (float(f"{m[1]}.{m[3] or 0}"), len(m[3] or ""), m[2] or ".") if m else None


def fill(ws: Worksheet, grades: dict[str, tuple[str, str]], feedback: dict[str, str]) -> tuple[bytes, list[str]]:
    """The worksheet with ``Grade`` set for the participants in ``grades`` (``{id: (score, max_score)}``,
    scaled to the row's ``Maximum Grade`` and written as Moodle formats it) and ``Feedback comments``
    given ``feedback`` (appended to what is there). Other rows and cells stay as downloaded."""
    if MAXGRADE not in ws.header and "Scale" in ws.header:
        raise LabError(f"{ws.path}: this assignment is graded with a scale, not points; the worksheet takes scale "
                       f"items, not scores: switch its grade type to Point, or use --lms moodle or csv")
    warnings, scaled, locked = [], set(), []
    gi, fi = ws.col(GRADE), ws.col(FEEDBACK)
    rows = [list(r) for r in ws.rows]
    for pid, row in zip(ws.ids(), rows):
        if pid not in grades:
            continue
        score, points = float(grades[pid][0]), float(grades[pid][1] or 0)
        top = _number(ws.cell(row, MAXGRADE))
        value, decimals, sep = score, 2, "."
        if top is not None:
            _, decimals, sep = top
            if points > 0 and abs(top[0] - points) > 1e-9:
                value = score * top[0] / points
                scaled.add(f"{points:g} -> {top[0]:g}")
        row += [""] * (len(ws.header) - len(row))
        row[gi] = f"{value:.{decimals}f}".replace(".", sep)
        note = feedback.get(pid, "")
        if fi is not None and note and note not in row[fi]:
            row[fi] = f"{row[fi].rstrip()}\n{note}" if row[fi].strip() else note
        if ws.cell(row, CHANGEABLE).casefold() == "no":
            locked.append(pid)
    if scaled:
        warnings.append(f"scores scaled to the worksheet's {MAXGRADE} ({', '.join(sorted(scaled))} points)")
    if locked:
        warnings.append(f"Moodle says the grade cannot be changed for participant(s) {', '.join(locked)} "
                        f"(locked or finalised): its upload will skip them")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=ws.newline)
    w.writerow(ws.header)
    w.writerows(rows)
    return (b"\xef\xbb\xbf" if ws.bom else b"") + buf.getvalue().encode("utf-8"), warnings


def keep(submissions: Path, edgekit_dir: Path) -> None:
    """Keep collect's worksheet copy beside grade's roster copy (``OUT/.edgekit``) for ``edgekit export``."""
    src, dest = submissions / WORKSHEET, edgekit_dir / WORKSHEET
    if src.is_file():
        from .._io import atomic_write

        atomic_write(dest, src.read_bytes())
    elif dest.is_file():
        dest.unlink()  # from another class's submissions: never export into the wrong worksheet
