"""The late policy of a lab (``[late]`` in ``lab.toml``) and its penalty on a record's score.

    [late]
    deadline = "2026-11-03T23:59:00+00:00"   # ISO 8601 with its UTC offset (a TOML date-time works too)
    per_day = 0.1                              # fraction of the score lost per day started after the deadline
    max_days = 3                               # later than this many days: no credit

A submission ``d`` whole or started days after the deadline keeps ``1 - d * per_day`` of its
score; one second late is one day; past ``max_days`` it keeps nothing. ``grade_batch`` reads
``submitted_at`` from ``SUBMISSIONS/roster.csv`` (written by ``edgekit collect``) and stores
``record["late"]`` with the fraction taken and the score before it, so applying the policy again
(a resumed run, a regenerated gradebook) starts from that score and never penalises twice.

>>> p = parse({"deadline": "2026-11-03T23:59:00+00:00", "per_day": 0.1, "max_days": 3}, "lab.toml")
>>> pen = penalty(p, "2026-11-05T10:00:00+00:00")
>>> pen.days, pen.fraction, pen.note
(2, 0.2, 'Submitted 2 days late (2026-11-05 10:00 UTC): -20%')
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._errors import ConfigError, LabError
from .results import autograded

DAY_S = 86400.0


@dataclass(frozen=True)
class LatePolicy:
    deadline: datetime  # aware
    per_day: float
    max_days: int


@dataclass(frozen=True)
class Penalty:
    days: int  # whole days started after the deadline (0: on time)
    fraction: float  # of the score taken, 0..1
    note: str = ""  # one sentence for feedback ("" when on time)


ON_TIME = Penalty(0, 0.0)


def parse(table, manifest) -> LatePolicy | None:
    """``[late]`` of ``lab.toml`` (None when absent); a LabError says what is wrong and how to write it."""
    if table is None:
        return None
    where = f"{manifest}: [late]"
    if not isinstance(table, dict):
        raise LabError(f"{where} must be a table (deadline, per_day, max_days), got {table!r}")
    unknown = set(table) - {"deadline", "per_day", "max_days"}
    if unknown or "deadline" not in table:
        raise LabError(f"{where} takes deadline (required), per_day and max_days; got {sorted(table)}")
    deadline = table["deadline"]
    if isinstance(deadline, str):
        try:
            deadline = _iso(deadline)
        except ValueError:
            raise LabError(f"{where} deadline {table['deadline']!r} is not an ISO 8601 date-time; "
                           f"write e.g. \"2026-11-03T23:59:00+00:00\"") from None
    if not isinstance(deadline, datetime):  # a TOML date, a time or a number
        raise LabError(f"{where} deadline {deadline!r} needs a date and a time with its offset, "
                       f"e.g. \"2026-11-03T23:59:00+00:00\"")
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise LabError(f"{where} deadline {deadline.isoformat()} has no UTC offset, so the hour is ambiguous; "
                       f"add the offset, e.g. \"{deadline.isoformat()}+00:00\" (UTC) or \"+01:00\"")
    per_day, max_days = table.get("per_day", 0.1), table.get("max_days", 3)
    if isinstance(per_day, bool) or not isinstance(per_day, (int, float)) or not 0 <= per_day <= 1:
        raise LabError(f"{where} per_day = {per_day!r}: expected a fraction of the score from 0 to 1, e.g. 0.1")
    if isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 0:
        raise LabError(f"{where} max_days = {max_days!r}: expected a whole number of days >= 0, e.g. 3")
    return LatePolicy(deadline, float(per_day), max_days)


def _iso(text: str) -> datetime:
    text = text.strip()  # Python 3.10's fromisoformat does not read a "Z" suffix
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)


def when(value: str | datetime | None) -> datetime | None:
    """A roster's ``submitted_at`` as an aware datetime (None when empty); a naive one is a ConfigError."""
    if value is None or value == "":
        return None
    try:
        t = value if isinstance(value, datetime) else _iso(str(value))
    except ValueError:
        raise ConfigError(f"submitted_at {value!r} is not an ISO 8601 date-time with offset, "
                          f"e.g. 2026-11-03T14:05:00+00:00; fix roster.csv") from None
    if t.utcoffset() is None:
        raise ConfigError(f"submitted_at {value!r} has no UTC offset; roster.csv needs e.g. "
                          f"2026-11-03T14:05:00+00:00")
    return t


def penalty(policy: LatePolicy | None, submitted_at: str | datetime | None) -> Penalty:
    """What a submission at ``submitted_at`` loses under ``policy`` (no policy or no time: nothing)."""
    t = when(submitted_at)
    if policy is None or t is None or t <= policy.deadline:
        return ON_TIME
    days = math.ceil((t - policy.deadline).total_seconds() / DAY_S)
    stamp = t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    late = f"Submitted {days} day{'s' if days > 1 else ''} late ({stamp})"
    if days > policy.max_days:
        return Penalty(days, 1.0, f"{late}, more than the {policy.max_days} day(s) accepted: no credit")
    fraction = round(min(1.0, days * policy.per_day), 6)
    return Penalty(days, fraction, f"{late}: -{fraction * 100:g}%")


def apply(record: dict, pen: Penalty, submitted_at: str = "") -> dict:
    """``record`` with ``pen`` applied to its unpenalised score (kept in ``record["late"]["score_before"]``).

    Idempotent: a record already penalised is recomputed from ``score_before``, its old note
    replaced; an on-time penalty takes an earlier one off. A record with no score (refused,
    not graded) is returned as it is.
    """
    old = record.get("late") or {}
    base = autograded(record)
    if base is None:
        return record
    new = {k: v for k, v in record.items() if k != "late"}
    new["notes"] = [n for n in record.get("notes", []) if n != old.get("note")]
    new["score"] = base
    if pen.days:
        new["score"] = round(base * (1 - pen.fraction), 6)
        new["late"] = {"days": pen.days, "fraction": pen.fraction, "note": pen.note,
                       "submitted_at": str(submitted_at), "score_before": base}
        new["notes"] = [pen.note] + new["notes"]
    return new


def read_roster(path: Path) -> dict[str, dict]:
    """``roster.csv`` as ``{id: row}``; unknown columns are kept, a repeated id is a ConfigError."""
    rows: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "id" not in (reader.fieldnames or []):
            raise ConfigError(f"{path}: expected a header starting id,name,email,submitted_at,files,notes; "
                              f"got {reader.fieldnames}; write it with `edgekit collect`")
        for row in reader:
            sid = (row.get("id") or "").strip()
            if not sid:
                continue
            if sid in rows:
                raise ConfigError(f"{path}: student id {sid!r} appears twice; keep one row per student")
            rows[sid] = {k: (v or "") for k, v in row.items() if k is not None}
    return rows


def load_roster(path: Path, keep: Path | None = None) -> dict[str, dict] | None:
    """``roster.csv`` checked up front (ids, ``submitted_at`` values), or None when there is none;
    a copy is kept at ``keep`` (``OUT/.edgekit/roster.csv``, which ``edgekit export`` reads)."""
    if not path.is_file():
        return None
    rows = read_roster(path)
    for sid, row in rows.items():
        try:
            when(row.get("submitted_at"))
        except ConfigError as exc:
            raise ConfigError(f"{path}, student {sid}: {exc}") from None
    if keep is not None:
        from .._io import atomic_write

        atomic_write(keep, path.read_bytes())
    return rows


def apply_roster(policy: LatePolicy | None, rows: dict[str, dict] | None, records: dict[str, dict],
                 write) -> list[str]:
    """Apply ``policy`` to every record from the roster's ``submitted_at``; ``write(record)`` the changed
    ones. Returns warnings (students the policy could not be applied to). No roster: nothing changes."""
    if rows is None:
        return []
    warnings, unknown, untimed = [], [], []
    for sid, rec in records.items():
        row = rows.get(sid)
        if row is None:
            unknown.append(sid)
            pen, at = ON_TIME, ""
        else:
            at = row.get("submitted_at", "")
            if policy is not None and not at and rec.get("status") not in ("missing", "refused", "not graded"):
                untimed.append(sid)
            pen = penalty(policy, at)
        new = apply(rec, pen, at)
        if new != rec:
            records[sid] = new
            write(new)
    if unknown:
        warnings.append(f"not in roster.csv: {', '.join(sorted(unknown))} (no late policy applied)")
    if untimed:
        warnings.append(f"no submitted_at in roster.csv for {', '.join(sorted(untimed))}: graded as on time")
    return warnings
