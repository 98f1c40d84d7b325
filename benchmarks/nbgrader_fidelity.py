"""How often ``edgekit grade`` gives the points nbgrader gives, test cell by test cell.

    python benchmarks/nbgrader_fidelity.py                 # nbgrader's recorded verdicts (fast)
    python benchmarks/nbgrader_fidelity.py --run-nbgrader  # nbgrader runs too: fresh verdicts, timed
    python benchmarks/nbgrader_fidelity.py --record        # ...and its verdicts written to the corpus
        [--corpus tests/fixtures/nbgrader-corpus] [--only NAME ...] [--jobs N]
        [--out benchmarks/results/nbgrader_fidelity.json]

The corpus (see its README.md): one folder per assignment, ``source.ipynb`` + support files +
``submissions/<student>.ipynb`` + ``nbgrader-verdicts.json`` ({student: {grade_id: points}}, from
nbgrader 0.9.6's ``generate_assignment`` + ``autograde`` in a real course, scores read through the
gradebook API; see nbgrader_course.py). edgekit grades each assignment with
``edgekit grade source.ipynb SUBMISSIONS --out OUT --force`` (one subprocess, start-up included),
each test cell's points read from OUT/<student>/results.json (a test's ``tags`` name its grade_id;
a ``disputed`` flag is read where the record has one). Agreement: the same points (to 1e-6) on a
test cell; a submission agrees on its total when the sums match. Wall time per submission: each
tool's wall time over the batch / submissions, both tools on the same submissions in one run (only
with --run-nbgrader; nbgrader grades one notebook after the other, edgekit with --jobs).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbgrader_course  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def edgekit_points(tests: list[dict]) -> dict[str, tuple[float, bool]]:
    """``{grade_id: (points, disputed)}`` from the ``tests`` of a results.json."""
    out: dict[str, tuple[float, bool]] = {}
    for t in tests:
        gid = t.get("question") or (t.get("tags") or [t.get("name")])[0]
        pts, disputed = out.get(gid, (0.0, False))
        out[gid] = (pts + float(t.get("score") or 0.0), disputed or bool(t.get("disputed", (t.get("extra_data") or {}).get("disputed"))))
    return out


def run_edgekit(a: Path, work: Path, jobs: int | None) -> tuple[dict, dict]:
    """Grade one assignment's submissions with edgekit's CLI: ({student: {gid: (points, disputed)}}, timing)."""
    subs, out = work / "edgekit" / a.name / "submissions", work / "edgekit" / a.name / "out"
    shutil.rmtree(subs.parent, ignore_errors=True)
    for s in sorted((a / "submissions").glob("*.ipynb")):  # edgekit's layout: SUBMISSIONS/<student>/<name>.ipynb
        (subs / s.stem).mkdir(parents=True)
        shutil.copyfile(s, subs / s.stem / "source.ipynb")
    cmd = [sys.executable, "-m", "edgekit", "grade", str(a / "source.ipynb"), str(subs), "--out", str(out), "--force"]
    cmd += ["--jobs", str(jobs)] if jobs else []
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # cwd: this tree's edgekit first
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    points = {}
    for d in sorted(p for p in subs.iterdir()):
        rec = json.loads((out / d.name / "results.json").read_text(encoding="utf-8"))
        points[d.name] = edgekit_points(rec.get("tests", []))
    return points, {"wall_s": round(wall, 3), "submissions": len(points)}


def compare(a: Path, nbg: dict, ek: dict) -> list[dict]:
    cells = nbgrader_course.graded_cells(a / "source.ipynb")
    rows = []
    for student in sorted(nbg):
        for gid, max_points in cells.items():
            e, disputed = ek.get(student, {}).get(gid, (0.0, False))
            n = nbg[student][gid]
            rows.append({"assignment": a.name, "student": student, "grade_id": gid, "max_points": max_points,
                         "nbgrader": n, "edgekit": round(e, 4), "disputed": disputed, "agree": abs(n - e) < 1e-6})
    return rows


def totals(rows: list[dict]) -> dict:
    subs: dict[tuple, list[dict]] = {}
    for r in rows:
        subs.setdefault((r["assignment"], r["student"]), []).append(r)
    same = sum(abs(sum(r["nbgrader"] for r in rs) - sum(r["edgekit"] for r in rs)) < 1e-6 for rs in subs.values())
    clear = [r for r in rows if not r["disputed"]]
    n, k = len(rows), sum(r["agree"] for r in rows)
    return {"cells": n, "cells_agree": k, "agreement": round(k / n, 4) if n else None,
            "cells_not_disputed": len(clear), "agree_not_disputed": sum(r["agree"] for r in clear),
            "agreement_not_disputed": round(sum(r["agree"] for r in clear) / len(clear), 4) if clear else None,
            "disputed": n - len(clear), "disputed_share": round((n - len(clear)) / n, 4) if n else None,
            "submissions": len(subs), "same_total": same, "same_total_share": round(same / len(subs), 4) if subs else None,
            "points_nbgrader": round(sum(r["nbgrader"] for r in rows), 4),
            "points_edgekit": round(sum(r["edgekit"] for r in rows), 4),
            "points_max": round(sum(r["max_points"] for r in rows), 4)}


def read_verdicts(a: Path) -> dict:
    path = a / "nbgrader-verdicts.json"
    if not path.is_file():
        sys.exit(f"{path} is missing: run `python benchmarks/nbgrader_fidelity.py --record` (needs a package index once)")
    return json.loads(path.read_text(encoding="utf-8"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=str(ROOT / "tests" / "fixtures" / "nbgrader-corpus"))
    p.add_argument("--run-nbgrader", action="store_true", help="grade with nbgrader now (its venv is made once)")
    p.add_argument("--record", action="store_true", help="--run-nbgrader, and write nbgrader-verdicts.json files")
    p.add_argument("--only", nargs="*", help="these assignment folders only")
    p.add_argument("--jobs", type=int, help="edgekit's --jobs (default: all cores)")
    p.add_argument("--work", default=str(ROOT / "benchmarks" / ".work" / "nbgrader-fidelity"))
    p.add_argument("--venv", default=str(Path.home() / ".cache" / "edgekit-bench" / "nbgrader-venv"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nbgrader_fidelity.json"))
    args = p.parse_args()
    t_start, work = time.perf_counter(), Path(args.work).resolve()
    batch = [a for a in nbgrader_course.assignments(Path(args.corpus)) if not args.only or a.name in args.only]
    run_nbg = args.run_nbgrader or args.record
    console = Console()
    console = console if console.is_terminal else Console(width=140)
    recorded = {a.name: json.loads((a / "nbgrader-verdicts.json").read_text(encoding="utf-8"))
                for a in batch if (a / "nbgrader-verdicts.json").is_file()}
    nbg_timing: dict = {}
    if run_nbg:
        verdicts, nbg_timing = nbgrader_course.autograde(batch, work, Path(args.venv), log=console.print)
        changed = {a: [s for s in v if recorded.get(a, {}).get(s) not in (None, v[s])] for a, v in verdicts.items()}
        for a, students in changed.items():
            for s in students:
                console.print(f"[yellow]nbgrader now differs from its recorded verdict:[/] {a}/{s}: "
                              f"{recorded[a][s]} -> {verdicts[a][s]}")
        if args.record:
            for a in batch:
                (a / "nbgrader-verdicts.json").write_text(json.dumps(verdicts[a.name], indent=1, sort_keys=True) + "\n")
            console.print(f"recorded nbgrader's verdicts in {len(batch)} nbgrader-verdicts.json files")
    else:
        verdicts = {a.name: read_verdicts(a) for a in batch}
    rows, ek_timing = [], {}
    for a in batch:
        ek, ek_timing[a.name] = run_edgekit(a, work, args.jobs)
        rows += compare(a, verdicts[a.name], ek)
    by = {a.name: totals([r for r in rows if r["assignment"] == a.name]) for a in batch}
    total = totals(rows)

    def per_sub(t: dict) -> float | None:
        n = sum(x["submissions"] for x in t.values())
        return round(sum(x["wall_s"] for x in t.values()) / n, 3) if n else None

    timing = {"edgekit": {"jobs": args.jobs or "all cores", "wall_per_submission_s": per_sub(ek_timing), "by_assignment": ek_timing},
              "nbgrader": {"wall_per_submission_s": per_sub(nbg_timing), "by_assignment": nbg_timing} if run_nbg else None}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    import edgekit as ek_mod

    result = {"benchmark": "nbgrader_fidelity", "command": " ".join(["python", "benchmarks/nbgrader_fidelity.py", *sys.argv[1:]]),
              "nbgrader_verdicts": "fresh run" if run_nbg else "recorded in the corpus",
              "versions": {"edgekit": ek_mod.__version__, "edgekit_commit": commit, "python": platform.python_version(),
                           "nbgrader": nbgrader_course.nbgrader_version(Path(args.venv)) if run_nbg else "0.9.6 (recorded)"},
              "totals": total, "by_assignment": by, "timing": timing, "cells": rows,
              "script_wall_s": round(time.perf_counter() - t_start, 1)}

    table = Table(title=f"edgekit vs nbgrader, per test cell ({result['nbgrader_verdicts']}; edgekit {commit})")
    for col in ("assignment", "subs", "cells agree", "%", "same total", "disputed", "pts nbgrader", "pts edgekit"):
        table.add_column(col, justify="left" if col == "assignment" else "right")

    def row(name: str, t: dict, style: str | None = None) -> None:
        table.add_row(name, str(t["submissions"]), f"{t['cells_agree']}/{t['cells']}", f"{100 * (t['agreement'] or 0):.0f}",
                      f"{t['same_total']}/{t['submissions']}", str(t["disputed"]), f"{t['points_nbgrader']:g}",
                      f"{t['points_edgekit']:g}", style=style)

    for name, t in by.items():
        row(name, t)
    row("all", total, "bold")
    console.print(table)
    console.print(f"cells agreeing: {total['cells_agree']}/{total['cells']} ({100 * total['agreement']:.1f}%); excluding "
                  f"disputed: {total['agree_not_disputed']}/{total['cells_not_disputed']}; disputed share "
                  f"{100 * total['disputed_share']:.1f}%; same total: {total['same_total']}/{total['submissions']}")
    ek_s, nbg_s = timing["edgekit"]["wall_per_submission_s"], (timing["nbgrader"] or {}).get("wall_per_submission_s")
    console.print(f"wall s per submission: edgekit {ek_s}" + (f", nbgrader {nbg_s} (same submissions, this run)" if nbg_s
                                                               else " (nbgrader not run: --run-nbgrader times it)"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"wrote {args.out} ({result['script_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
