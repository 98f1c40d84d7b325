"""Grading time per lab: the reference solution and the released stub, each graded by `edgekit grade`.

    python benchmarks/labs.py            # all labs in labs/; writes benchmarks/results/labs.json

For every lab, a batch of two submissions (the instructor's notebook and the released student
notebook) is graded with one worker (`jobs=1`), so the times do not depend on the core count.
Reported per submission: the judge's `execution_time` (from results.json: run the notebook in
the fenced process, ask for every case's value, compare), and per lab the batch's wall time
(worker start-up and the reference's expected values included).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nbformat

from edgekit.grading import grade_batch, load_lab
from edgekit.grading.notebook import read_notebook

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "labs.json"))
    args = ap.parse_args(argv)
    rows = []
    for lab_dir in sorted(p for p in (ROOT / "labs").iterdir() if (p / "lab.toml").is_file()):
        lab = load_lab(lab_dir)
        with tempfile.TemporaryDirectory() as tmp:
            subs = Path(tmp) / "subs"
            for student in ("solution", "stub"):
                (subs / student).mkdir(parents=True)
            nbformat.write(read_notebook(lab.notebook_path), subs / "solution" / f"{lab.id}.ipynb")
            (subs / "stub" / f"{lab.id}.ipynb").write_bytes((ROOT / "notebooks" / lab.id / f"{lab.id}.ipynb").read_bytes())
            t0 = time.perf_counter()
            res = grade_batch(lab_dir, subs, Path(tmp) / "out", jobs=1, progress=False)
            wall = time.perf_counter() - t0
        rec = {r["student"]: r for r in res.records}
        rows.append({"lab": lab.id, "max_score": lab.max_score, "batch_wall_s": round(wall, 2),
                     **{f"{s}_s": rec[s]["execution_time"] for s in ("solution", "stub")},
                     **{f"{s}_score": rec[s]["score"] for s in ("solution", "stub")}})
        r = rows[-1]
        print(f"{r['lab']:<26} solution {r['solution_s']:6.2f} s ({r['solution_score']:g}/{r['max_score']:g})   "
              f"stub {r['stub_s']:6.2f} s ({r['stub_score']:g})   batch of 2: {r['batch_wall_s']:6.2f} s")
    Path(args.out).write_text(json.dumps({"benchmark": "labs", "command": "python benchmarks/labs.py",
                                          "jobs": 1, "labs": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
