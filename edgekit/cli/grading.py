"""``edgekit lab release``, ``edgekit check`` and ``edgekit grade`` (registered by :mod:`edgekit.cli.main`)."""

from __future__ import annotations

import sys


def cmd_lab(args) -> int:
    from rich.console import Console

    from ..grading import load_lab, release

    console = Console()
    if args.action == "release":
        for lab_path in args.labs:
            files = release(lab_path, args.out)
            console.print(f"released {lab_path} -> " + ", ".join(str(f) for f in files))
        return 0
    for lab_path in args.labs:  # info: what a lab contains, without its secrets
        lab = load_lab(lab_path)
        cases = lab.cases()
        console.print(f"[bold]{lab.id}[/] — {lab.title} ({lab.format} format, {lab.max_score:g} points, "
                      f"limits: {lab.limits})")
        for q in lab.questions:
            mine = [c for c in cases if c.question == q.id]
            console.print(f"  {q.id} ({q.points:g} pts) {q.title}: {sum(c.public for c in mine)} public, "
                          f"{sum(not c.public for c in mine)} hidden cases")
    return 0


CHECK_HELP = """\
Check your lab before you hand it in.

Runs your notebook from top to bottom, the way the grader will, then runs the public checks of
each question (or only the questions you name) and says which pass. If one fails, the message
shows the call, what it returned and what was expected, and the line of your cell that raised.

It reads the notebook as SAVED on disk, not what is open in Jupyter: save first (Ctrl+S / Cmd+S).
Run it in a second terminal, next to Jupyter. Passing every public check is a good sign, not a
grade: the grader also runs hidden tests with other inputs.

examples:
  edgekit check notebooks/lab01-first-inference/lab01-first-inference.ipynb
  edgekit check lab01-first-inference.ipynb q1 q2     (only questions 1 and 2)

exit status: 0 when every check of the questions asked passes, 1 when one fails, 2 when the
notebook cannot be read. Errors in cells that belong to no question are listed apart and do not
change the exit status.
"""


def cmd_check(args) -> int:
    import time
    from pathlib import Path

    from ..grading.selfcheck import check_notebook

    results = check_notebook(args.notebook, args.questions or None)
    graded = [r for r in results if r.question != "notebook"]
    other = [r for r in results if r.question == "notebook"]
    for r in graded:
        print(r)
    if other:
        print("\nOutside the questions (no points of their own; an answer that needs such a cell fails with it):")
        for r in other:
            print(f"  {r.name}: " + (r.message if not r.passed else "") + (f"\n      {r.output}" if r.output else ""))
    passed = sum(r.passed for r in graded)
    path = Path(args.notebook)
    saved = time.strftime("%H:%M:%S", time.localtime(path.stat().st_mtime))
    print(f"\n{passed}/{len(graded)} checks passed"
          + (" — the grader also runs hidden tests" if passed == len(graded) else ""))
    print(f"(checked {path.name} as saved on disk at {saved}: save in Jupyter before checking again)")
    return 0 if passed == len(graded) else 1


def cmd_grade(args) -> int:
    import signal

    from rich.console import Console
    from rich.table import Table

    from ..grading.batch import Interrupted, grade_batch
    from ..grading.results import summary_rows

    console = Console(stderr=True)
    if sys.platform != "linux" and not args.no_isolation:
        console.print("[yellow]warning:[/] full isolation (namespaces, read-only mounts) needs Linux; "
                      "here submissions run with resource limits only")
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # `kill` and job schedulers: stop as Ctrl-C does
        signal.signal(signal.SIGTERM, lambda signum, frame: signal.default_int_handler(signum, frame))
    try:
        res = grade_batch(args.lab, args.submissions, args.out, jobs=args.jobs, force=args.force,
                          nbgrader_policy=args.nbgrader_policy,
                          scheduler=args.scheduler, isolate=not args.no_isolation, hide=args.hide or [],
                          unsafe_no_cgroups=args.unsafe_no_cgroups)
    except Interrupted as stop:
        res = stop.result
        for w in res.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        console.print(f"[red]interrupted:[/] {len(res.graded)} graded now, {len(res.skipped)} unchanged (kept), "
                      f"{len(res.not_graded)} not graded (status 'not graded', no score) in {res.out / 'grades.csv'}; "
                      "run the same command again to grade the rest")
        return 130
    questions = next((list(r["questions"]) for r in res.records if r.get("questions")), [])
    table = Table(title=f"{res.lab}: {len(res.graded)} graded now, {len(res.skipped)} unchanged (kept)")
    table.add_column("")
    table.add_column("value", justify="right")
    for k, v in summary_rows(res.records, questions):
        table.add_row(k, str(v))
    console.print(table)
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    refused = [r["student"] for r in res.records if r.get("status") == "refused"]
    if refused:
        console.print(f"[yellow]warning:[/] not graded, folder name taken by an output file: {', '.join(refused)} "
                      "(rename these folders and grade again)")
    if res.isolation and "root" not in res.isolation and "userns" not in res.isolation:
        console.print(f"[yellow]warning:[/] isolation level {res.isolation}: see labs/README.md (threat model)")
    console.print(f"grades: {res.out / 'grades.csv'}; per student: {res.out}/<student>/results.json, feedback.html")
    return 0


def register(sub) -> None:
    s = sub.add_parser("lab", help="instructors: release the student version of a lab, or show a lab")
    s.add_argument("action", choices=["release", "info"])
    s.add_argument("labs", nargs="+", help="lab folder(s) with lab.toml, or nbgrader source notebook(s)")
    s.add_argument("--out", default="notebooks", help="release: parent folder; each lab goes into OUT/<lab id>/ (default: notebooks)")
    s.set_defaults(func=cmd_lab)

    import argparse

    s = sub.add_parser("check", help="students: run your saved notebook and its public checks",
                       description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("notebook", help="your lab notebook, the .ipynb file (saved)")
    s.add_argument("questions", nargs="*", help="only these questions, e.g. q1 q3 (default: all)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("grade", help="instructors: grade SUBMISSIONS/<student>/<notebook>.ipynb safely, in parallel")
    s.add_argument("lab", help="lab folder (lab.toml) or nbgrader source notebook")
    s.add_argument("submissions", help="folder of <student_id>/<notebook>.ipynb")
    s.add_argument("--out", required=True, help="grades folder: grades.csv, <student>/results.json, feedback.html")
    s.add_argument("--jobs", type=int, help="parallel submissions (default: all cores)")
    s.add_argument("--force", action="store_true", help="regrade submissions graded before")
    s.add_argument("--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786")
    s.add_argument("--hide", action="append", help="another folder student code must not see (repeatable)")
    s.add_argument("--no-isolation", action="store_true", help="rlimits only: for debugging a lab, never for real grading")
    s.add_argument("--nbgrader-policy", choices=["strict", "nbgrader"], default="strict",
                   help="nbgrader test cells whose replay in the grader disagrees with the notebook's own run "
                        "(disputed): strict = no points (default), nbgrader = the notebook's verdict, as nbgrader")
    s.add_argument("--unsafe-no-cgroups", action="store_true",
                   help="grade where no cgroup can cap a submission's total memory and processes (per-process limits only)")
    s.set_defaults(func=cmd_grade)
