"""``edgekit collect``: an LMS download into ``SUBMISSIONS/<id>/<notebook>.ipynb`` + ``roster.csv``."""

from __future__ import annotations

import sys

COLLECT_HELP = """\
Unpack an LMS download (the .zip, or its unpacked folder) into the folder `edgekit grade` takes:
SUBMISSIONS/<student id>/<lab id>.ipynb, every other file under SUBMISSIONS/<id>/_other/, and
SUBMISSIONS/roster.csv (id, name, email, submitted_at, files, notes: a note for every file not graded).

  moodle      "Download all submissions" (folders "Full Name_123456_assignsubmission_file_")
  canvas      "Download Submissions" (files "lastfirst_[LATE_]userid_fileid_name")
  gradescope  "Export Submissions" (submission_<id>/ and submission_metadata.yml)
  folder      EXPORT/<student id>/...

A Moodle zip has no e-mails and no submission times: add the assignment's grading worksheet
(Grading action > Download grading worksheet) with --worksheet, and the zone of the Moodle user who
downloaded it with --timezone. Its participants who submitted nothing get a roster row too.

examples:
  edgekit collect submissions.zip --lms moodle --lab labs/lab11-capstone --out subs/
  edgekit collect submissions.zip --lms moodle --lab labs/lab11-capstone --out subs/ \
      --worksheet worksheet.csv --timezone Europe/Berlin
  edgekit grade labs/lab11-capstone subs/ --out grades/
"""


def cmd_collect(args) -> int:
    from ..grading.collect import collect

    res = collect(args.export, args.lms, args.out, args.lab, force=args.force, max_bytes=args.max_mb * 2**20,
                  worksheet=args.worksheet, timezone=args.timezone)
    for w in res.warnings:
        print(f"edgekit: warning: {w}", file=sys.stderr)
    print(res)
    if res.timezone:
        print(f"the worksheet's times were read as {res.timezone} time (--timezone to change)")
    return 0


def register(sub) -> None:
    import argparse

    s = sub.add_parser("collect", help="instructors: unpack an LMS download into SUBMISSIONS/<id>/<notebook>.ipynb",
                       description=COLLECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("export", help="the LMS download: a .zip file or its unpacked folder")
    s.add_argument("--lms", required=True, choices=["moodle", "canvas", "gradescope", "folder"])
    s.add_argument("--lab", required=True, help="lab folder (lab.toml), nbgrader source notebook, or lab id")
    s.add_argument("--out", required=True, help="the SUBMISSIONS folder to write (new or empty)")
    s.add_argument("--force", action="store_true",
                   help="merge into an earlier collect's folder: this export's students replaced, others kept")
    s.add_argument("--worksheet", help="Moodle only: the assignment's grading worksheet CSV (e-mails, submission times)")
    s.add_argument("--timezone", help="zone of the worksheet's times, e.g. Europe/Berlin (default: this machine's)")
    s.add_argument("--max-mb", type=int, default=2048, help="refuse an export that unpacks to more (default: 2048)")
    s.set_defaults(func=cmd_collect)
