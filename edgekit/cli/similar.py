"""``edgekit similar SUBMISSIONS --lab LAB``: pairs of answers that share code, for a person to read."""

from __future__ import annotations

HELP = """\
Flag answers that look copied: compare every pair of students' answer cells, question by
question, the way MOSS does (tokens with names, numbers and strings made alike, comments and
spacing ignored; k-gram fingerprints chosen by winnowing; the released stub's code left out).
Writes an HTML report of the pairs at or above --threshold, their shared lines marked side by
side, and prints the top pairs. It flags; it never changes a grade.

SUBMISSIONS is the folder that was graded, SUBMISSIONS/<student>/<notebook>.ipynb (the notebook
is picked as `edgekit grade` picks it). A grades folder (edgekit grade --out OUT) will not do:
its records keep each notebook's sha256, not the notebook.

score = shared fingerprints / fingerprints of the smaller answer (1.0: one answer is inside the
other). Answers with fewer than 4 fingerprints beyond the stub are too short to judge and are
listed as not compared. See labs/README.md, "Spotting copied answers", for what it cannot see.

example:
  edgekit similar submissions/ --lab labs/lab01-first-inference --out similar.html
"""


def cmd_similar(args) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from .._io import atomic_write
    from ..grading.lab import load_lab
    from ..grading.similarity import compare, report_html

    lab = load_lab(args.lab)
    sim = compare(lab, args.submissions, threshold=args.threshold, k=args.k, window=args.window,
                  common=args.common, base=[Path(p) for p in args.base or []])
    out = Path(args.out or f"{lab.id}-similar.html")
    atomic_write(out, report_html(sim))
    console = Console()
    table = Table(title=f"{lab.id}: {sim.students} notebooks, {len(sim.matches)} answer pair(s) "
                        f">= {sim.threshold:.0%} (flags only; no grade changed)")
    for col in ("score", "question", "student", "student", "shared"):
        table.add_column(col, justify="right" if col in ("score", "shared") else "left")
    for m in sim.matches[:args.top]:
        table.add_row(f"{m.score:.0%}", m.question, m.a, m.b, f"{m.shared} of {min(m.sizes)}")
    console.print(table)
    if len(sim.matches) > args.top:
        console.print(f"... and {len(sim.matches) - args.top} more in the report")
    if sim.skipped:
        console.print(f"{len(sim.skipped)} answer(s) or notebook(s) not compared (listed in the report)")
    console.print(f"report: {out}")
    return 0


def register(sub) -> None:
    import argparse

    s = sub.add_parser("similar", help="instructors: flag answers that look copied (MOSS-like), an HTML report",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("submissions", help="the submissions folder that was graded: SUBMISSIONS/<student>/<notebook>.ipynb")
    s.add_argument("--lab", required=True, help="lab folder (lab.toml) or nbgrader source notebook: its stub is base code")
    s.add_argument("--out", help="the HTML report (default: <lab id>-similar.html here)")
    s.add_argument("--threshold", type=float, default=0.5, help="report pairs scoring at least this, 0..1 (default 0.5)")
    s.add_argument("--k", type=int, default=5, help="tokens per k-gram: shorter shared runs never count (default 5)")
    s.add_argument("--window", type=int, default=4,
                   help="winnowing window: every shared run of k + window - 1 tokens is seen (default 4)")
    s.add_argument("--common", type=float, default=0.1,
                   help="ignore fingerprints in more than this share of a question's answers, idioms (default 0.1)")
    s.add_argument("--base", action="append", help="more code students were given (.ipynb or .py), left out (repeatable)")
    s.add_argument("--top", type=int, default=20, help="pairs printed here (the report has all; default 20)")
    s.set_defaults(func=cmd_similar)
