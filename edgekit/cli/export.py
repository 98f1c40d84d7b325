"""``edgekit export OUT --lms moodle|canvas|csv``: grades back to the LMS (registered by :mod:`edgekit.cli.main`)."""

from __future__ import annotations

import sys

HOWTO = {
    "moodle": "Moodle: Grades > Import > CSV file; map from 'Email address' to 'useremail', the grade column "
              "to the assignment's grade item, Feedback to its feedback",
    "canvas": "Canvas: Grades > Import; the Points Possible row and empty cells are left alone",
    "csv": "plain CSV: id,name,email,score,max_score,late,status",
    "moodle-worksheet": "Moodle: the assignment's Grading action > Upload grading worksheet; check the changes "
                        "it lists, then confirm",
}


def cmd_export(args) -> int:
    from ..grading.lms_export import export_grades

    res = export_grades(args.out, args.lms, submissions=args.submissions, to=args.to, lab=args.lab,
                        assignment=args.assignment, worksheet=args.worksheet)
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{res.students} students -> {res.path}\n{HOWTO[res.lms]}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("export", help="instructors: grades.csv as the grade import file of Moodle or Canvas, or a plain CSV")
    s.add_argument("out", help="the grades folder of `edgekit grade ... --out OUT`")
    s.add_argument("--lms", required=True, choices=["moodle", "canvas", "csv", "moodle-worksheet"],
                   help="the import format (moodle-worksheet: the grading worksheet downloaded at collect, filled)")
    s.add_argument("--submissions", help="folder with roster.csv (default: the copy `edgekit grade` kept in OUT/.edgekit)")
    s.add_argument("--worksheet", help="moodle-worksheet: the worksheet to fill (default: the copy collect kept)")
    s.add_argument("--to", help="file to write (default: OUT/export-<lms>.csv)")
    s.add_argument("--lab", help="the lab (default: the one edgekit grade used); rubric scores in OUT/gradebook.sqlite are merged first")
    s.add_argument("--assignment", help="grade column name (default: the lab id); for Canvas, its export's "
                                        "'Name (id)' updates that assignment")
    s.set_defaults(func=cmd_export)
