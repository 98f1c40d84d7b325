"""``edgekit review OUT``: the rubric grading page (registered by :mod:`edgekit.cli.main`)."""

from __future__ import annotations

HELP = """\
Grade the manual (rubric) questions of a graded batch in your browser.

Serves a page on 127.0.0.1 only, behind a random token (open the URL it prints; share it only
with your TAs on this machine, e.g. through an SSH tunnel). One page per student and question:
the answer rendered, the rubric from lab.toml as buttons, a comment box. Keys: j/k or arrows
next/previous, digits pick a level, Enter saves and moves on, f flags. Several TAs can grade at
once; every save lands in OUT/gradebook.sqlite and rewrites that student's results.json and
feedback.html, and grades.csv.

examples:
  edgekit review out                       (the lab and submissions edgekit grade used)
  edgekit review out --lab labs/lab11-capstone --submissions subs --port 8899
"""


def cmd_review(args) -> int:
    import getpass

    from ..grading.review import open_review, serve

    review = open_review(args.out, args.lab, args.submissions, grader=args.grader or getpass.getuser())
    try:
        serve(review, args.port)
    except KeyboardInterrupt:
        print("edgekit review: stopped; grades are in", review.out / "grades.csv")
    return 0


def register(sub) -> None:
    import argparse

    p = sub.add_parser("review", help="grade manual (rubric) questions in a local browser page",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the folder edgekit grade wrote (grades.csv, .edgekit/records)")
    p.add_argument("--lab", help="the lab (default: the one edgekit grade used)")
    p.add_argument("--submissions", help="the submissions folder (default: the one edgekit grade used)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--grader", help="your name in the gradebook (default: your login; the page can change it)")
    p.set_defaults(func=cmd_review)
