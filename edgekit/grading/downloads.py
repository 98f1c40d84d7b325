"""Reading an LMS download (a zip or its folder) safely, and whose each file is.

Layouts, as each LMS writes them:

    moodle      "Download all submissions": ``Full Name_<participant id>_assignsubmission_file_/...``
                folders, or flat files ``Full Name_<id>_assignsubmission_file_<name>`` (folders off);
                ``..._assignsubmission_onlinetext_`` holds the online text. No e-mail, no times.
    canvas      "Download Submissions": flat files ``<lastfirst>_[LATE_]<user id>_<file id>_<name>``
                (``anon_<id>`` when anonymous; a re-uploaded name gets ``-1``, ``-2``). No times:
                a late one is only marked ``LATE``, which goes into the notes.
    gradescope  "Export Submissions": ``submission_<id>/`` (or ``submission_<id>.<ext>``) and
                ``submission_metadata.yml`` (submitters' name, sid, e-mail; ``created_at``).
                A group submission is copied to every member. Needs PyYAML (the ``lab`` extra).
    folder      ``EXPORT/<student id>/...``, what ``edgekit grade`` takes.

Nothing here is trusted: a name with ``..``, an absolute path or a drive is never attributed to a
student (nor used as a path by :mod:`.collect`); symlinks and special files are left out with a
warning; the uncompressed total and the number of files are capped before anything is read.
"""

from __future__ import annotations

import os
import re
import stat
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import BinaryIO

from .._errors import LabError

LAYOUTS = ("moodle", "canvas", "gradescope", "folder")
MAX_FILES = 200_000

_MOODLE = re.compile(r"^(?P<name>[^/]*?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_(?P<rest>.*)$", re.DOTALL)
_CANVAS = re.compile(r"^(?:(?P<name>.*?)_)?(?P<late>LATE_)?(?P<id>\d+)_(?:\d+_)?(?P<rest>.+)$", re.DOTALL)
_CANVAS_ANON = re.compile(r"^(?P<name>)(?P<late>LATE_)?(?P<id>anon_[A-Za-z0-9]+)_(?:\d+_)?(?P<rest>.+)$", re.DOTALL)
_GRADESCOPE = re.compile(r"^(submission_\d+)(?:\.[^/]*)?$")
_LATE = "Canvas marked it late (LATE in the file names; the download has no submission time)"


@dataclass
class ExportFile:
    """One entry of the export: its path there (``/``-separated), size, time (for ordering) and bytes."""

    path: str
    size: int
    mtime: float
    open: Callable[[], BinaryIO]
    link: bool = False


@dataclass
class Student:
    """A student of the export: raw LMS id (made a folder name by collect), what the export says, their files."""

    id: str
    name: str = ""
    email: str = ""
    submitted_at: str = ""
    files: list[tuple[str, ExportFile]] = field(default_factory=list)  # (path in the submission, file)
    notes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # paths written under SUBMISSIONS/<id>/


def read_export(export: Path, max_bytes: int) -> tuple[list[ExportFile], list[str]]:
    """The regular files of a zip or folder (links left out, with a warning each), or an error past the caps."""
    if export.is_dir() or export.is_file():
        files = _read_folder(export) if export.is_dir() else _read_zip(export)
    else:
        raise LabError(f"export {export} does not exist; expected the LMS download (a .zip) or its unpacked folder")
    total = sum(f.size for f in files if not f.link)
    if total > max_bytes or len(files) > MAX_FILES:
        raise LabError(f"{export} unpacks to {total / 2**20:.0f} MiB in {len(files)} files; the cap is "
                       f"{max_bytes / 2**20:.0f} MiB and {MAX_FILES} files (a zip bomb?). If the download is "
                       "genuine, raise it with --max-mb")
    warnings = [f"{f.path!r} is a symbolic link or a special file: not followed, not copied" for f in files if f.link]
    return [f for f in files if not f.link], warnings


def _read_zip(path: Path) -> list[ExportFile]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LabError(f"{path} is not a readable zip ({exc}); give the LMS download or its unpacked folder") from None
    files = []
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = info.filename
        if not info.flag_bits & 0x800:  # no UTF-8 flag: many zippers still wrote UTF-8, read as cp437
            try:
                name = name.encode("cp437").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
        mode = info.external_attr >> 16
        files.append(ExportFile(_norm(name), info.file_size, time.mktime((*info.date_time, 0, 0, -1)),
                                lambda info=info: zf.open(info), link=stat.S_ISLNK(mode)))
    return files


def _read_folder(root: Path) -> list[ExportFile]:
    files = []
    for d, dirs, names in os.walk(root):  # never follows symlinked folders
        for n in sorted(names) + sorted(x for x in dirs if os.path.islink(os.path.join(d, x))):
            p = Path(d, n)
            st = os.lstat(p)
            files.append(ExportFile(_norm(p.relative_to(root).as_posix()), st.st_size, st.st_mtime,
                                    partial(p.open, "rb"), link=not stat.S_ISREG(st.st_mode)))
    return files


def _norm(name: str) -> str:
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


def _unsafe(path: str) -> bool:
    parts = path.split("/")
    return path.startswith("/") or re.match(r"^[A-Za-z]:", path) is not None or ".." in parts


def attribute(files: list[ExportFile], lms: str, warnings: list[str]) -> tuple[list[Student], list[ExportFile]]:
    """``(students, files of nobody)`` by ``lms``'s naming; one folder wrapped around it all is looked through."""
    safe = []
    unassigned = []
    for f in files:
        (unassigned if _unsafe(f.path) else safe).append(f)
    warnings += [f"{f.path!r} has an unsafe path (outside the export): not attributed to a student" for f in unassigned]
    students, rest = _by_layout(safe, lms)
    tops = {f.path.split("/", 1)[0] for f in safe}
    if not students and len(tops) == 1 and all("/" in f.path for f in safe):  # one folder around it all
        top = tops.pop() + "/"
        for f in safe:
            f.path = f.path[len(top):]
        students, rest = _by_layout(safe, lms)
    return list(students.values()), unassigned + rest


def _by_layout(files: list[ExportFile], lms: str) -> tuple[dict[str, Student], list[ExportFile]]:
    if lms == "gradescope":
        return _gradescope(files)
    students: dict[str, Student] = {}
    rest = []
    for f in files:
        m = None
        if lms == "moodle":
            m = _MOODLE.match(f.path)
        elif lms == "canvas" and "/" not in f.path:
            m = _CANVAS_ANON.match(f.path) or _CANVAS.match(f.path)
        elif lms == "folder" and "/" in f.path:
            sid, inner = f.path.split("/", 1)
            students.setdefault(sid, Student(sid)).files.append((inner, f))
            continue
        if m is None:
            rest.append(f)
            continue
        s = students.setdefault(m["id"], Student(m["id"], name=(m["name"] or "").strip()))
        inner = m["rest"].lstrip("/") or f"{m['plugin']}.html"
        s.files.append((inner, f))
        if lms == "canvas" and m["late"] and _LATE not in s.notes:
            s.notes.append(_LATE)
    return students, rest


def _gradescope(files: list[ExportFile]) -> tuple[dict[str, Student], list[ExportFile]]:
    meta_file = next((f for f in files if f.path == "submission_metadata.yml"), None)
    if meta_file is None:
        return {}, files
    from .._extras import require

    yaml = require("yaml", extra="lab", purpose="reading Gradescope's submission_metadata.yml")
    with meta_file.open() as fh:
        try:
            meta = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise LabError(f"submission_metadata.yml is not valid YAML ({exc}); is this a Gradescope export?") from None
    if not isinstance(meta, dict):
        raise LabError(f"submission_metadata.yml holds a {type(meta).__name__}; expected a mapping of "
                       "submission_<id> to its :submitters")
    groups: dict[str, list[tuple[str, ExportFile]]] = {}
    rest = [meta_file]
    for f in files:
        m = _GRADESCOPE.match(f.path.split("/", 1)[0]) if f is not meta_file else None
        if m:
            groups.setdefault(m[1], []).append((f.path.split("/", 1)[1] if "/" in f.path else f.path, f))
        elif f is not meta_file:
            rest.append(f)
    students: dict[str, Student] = {}
    for key, sub_files in groups.items():
        record = meta.get(key) if isinstance(meta.get(key), dict) else {}
        people = [p for p in record.get(":submitters") or [] if isinstance(p, dict)] or [{":sid": key}]
        when = _iso(record.get(":created_at"))
        ids = [str(p.get(":sid") or p.get(":email") or key) for p in people]
        for p, pid in zip(people, ids):
            s = students.setdefault(pid, Student(pid, str(p.get(":name") or ""), str(p.get(":email") or ""), when))
            s.files += sub_files
            if not record:
                s.notes.append(f"{key} is not in submission_metadata.yml: its folder name is the id")
            if len(ids) > 1:
                s.notes.append(f"group submission {key} with {', '.join(i for i in ids if i != pid)}")
    return students, rest


def _iso(value) -> str:
    """YAML's timestamp (PyYAML gives a datetime; one without a zone is UTC, as YAML says) in ISO 8601."""
    if not isinstance(value, datetime):
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat(timespec="seconds")
