"""edgekit's autograder against nbgrader's ``autograde``: same assignment, same submissions, same run.

    python benchmarks/grading.py [--submissions 20] [--skip-nbgrader] [--work benchmarks/.work/grading]
                                 [--out benchmarks/results/grading.json]

The script writes an nbgrader source notebook with nbformat (3 numpy questions worth 3, 2 and 1
points: softmax with hidden tests, HWC->NCHW, top-k), releases it with ``nbgrader
generate_assignment`` and makes N submissions from the released notebook: student i answers
each question correctly, partly (passes what is visible, fails the rest) or not at all, by the
base-3 digits of i (every third student all correct). The points make every subset sum differ,
so a total score says which questions passed; the expected total is known for each student.

nbgrader 0.9.6 runs from its own venv (``~/.cache/edgekit-bench/nbgrader-venv``, made once), and
``nbgrader autograde ps1 --force`` is timed as one subprocess (it grades one notebook after the
other). ``edgekit grade SOURCE.ipynb SUBMISSIONS --out OUT --force`` is timed as a subprocess too,
start-up included, with the default jobs (all cores) and with ``--jobs 1``. Each out folder is
fresh, so nothing is reused. Per submission: total wall / N, and a median: nbgrader's from the
gaps between its "Autograding" log lines, edgekit's from ``execution_time`` in results.json (the
judge's own time per submission, without worker start-up). Memory: a thread samples the RSS of
the whole process tree every 50 ms; the tree total counts pages that forked processes share once
per process, so it is an upper bound. Scores: nbgrader's from ``nbgrader export``, edgekit's from
grades.csv, both checked against each other and against the expected totals.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from rich.console import Console
from rich.table import Table

import edgekit as ek

NBGRADER = "nbgrader==0.9.6"
NBGRADER_FALLBACK = "nbgrader>=0.9,<0.10"  # the newest 0.9.x, if the exact version cannot be had

# (grade_id, points, solution cell, test cell, a partly correct answer)
QUESTIONS = [
    ("softmax", 3, '''def softmax(x, axis=-1):
    """Probabilities along `axis`; must not overflow for large inputs."""
    ### BEGIN SOLUTION
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
    ### END SOLUTION
''', '''x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
p = softmax(x)
assert p.shape == (2, 3)
assert np.allclose(p.sum(axis=-1), 1.0)
assert np.allclose(p[1], 1 / 3)
### BEGIN HIDDEN TESTS
big = softmax(np.array([1000.0, 1001.0]))  # the naive exp(x) / sum overflows here
assert np.all(np.isfinite(big)) and np.allclose(big, [0.26894142, 0.73105858])
### END HIDDEN TESTS
''', '''def softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)
'''),
    ("to_nchw", 2, '''def to_nchw(img):
    """HWC uint8 image -> float32 NCHW batch of one, scaled to [0, 1]."""
    ### BEGIN SOLUTION
    x = img.astype(np.float32) / 255.0
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]
    ### END SOLUTION
''', '''img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
out = to_nchw(img)
assert out.shape == (1, 3, 4, 5) and out.dtype == np.float32
assert np.isclose(out[0, 2, 1, 3], img[1, 3, 2] / 255)
''', '''def to_nchw(img):
    h, w, c = img.shape
    return (img.astype(np.float32) / 255.0).reshape(1, c, h, w)  # right shape, wrong layout
'''),
    ("top_k", 1, '''def top_k(scores, k):
    """Indices of the k highest scores, highest first."""
    ### BEGIN SOLUTION
    return np.argsort(-np.asarray(scores), kind="stable")[:k]
    ### END SOLUTION
''', '''s = np.array([0.1, 0.7, 0.2, 0.9, 0.05])
assert list(top_k(s, 2)) == [3, 1]
assert list(top_k(s, 1)) == [3]
''', '''def top_k(scores, k):
    return np.argsort(scores)[-k:]  # the right indices, lowest first
'''),
]
VARIANTS = ("correct", "partial", "stub")


def cell(kind: str, source: str, grade_id: str, *, solution=False, grade=False, locked=False, points=None):
    c = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    c.id = grade_id.replace("_", "-")  # fixed ids: nbformat would draw random ones
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    c.metadata["nbgrader"] = meta
    return c


def source_notebook():
    cells = [cell("markdown", "# Problem set 1: numpy for edge inference", "title", locked=True),
             cell("code", "import numpy as np", "imports", locked=True)]
    for gid, points, solution, test, _ in QUESTIONS:
        cells += [cell("markdown", f"## `{gid}` ({points} points)", f"{gid}_text", locked=True),
                  cell("code", solution, gid, solution=True),
                  cell("code", test, f"test_{gid}", grade=True, locked=True, points=points)]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def pattern(i: int) -> list[str]:
    return ["correct"] * 3 if i % 3 == 0 else [VARIANTS[(i // 3 ** q) % 3] for q in range(3)]


def expected_score(i: int) -> float:
    return float(sum(q[1] for q, v in zip(QUESTIONS, pattern(i)) if v == "correct"))


def submission(released, i: int):
    nb = nbformat.from_dict(json.loads(json.dumps(released)))  # a deep copy
    answers = {gid: (re.sub(r"[ \t]*### (BEGIN|END) SOLUTION\n", "", sol), partial)
               for gid, _, sol, _, partial in QUESTIONS}
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if c.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            v = pattern(i)[[q[0] for q in QUESTIONS].index(gid)]
            if v != "stub":  # a stub keeps the released "raise NotImplementedError()"
                c.source = answers[gid][0 if v == "correct" else 1]
    return nb


class TreeSampler(threading.Thread):
    """RSS of a process and all its descendants, every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.05):
        super().__init__(daemon=True)
        self.root, self.period, self.stop = psutil.Process(pid), period, threading.Event()
        self.tree_max = self.proc_max = 0

    def run(self):
        while not self.stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:  # exited between listing and reading
                    continue
                total += rss
                self.proc_max = max(self.proc_max, rss)
            self.tree_max = max(self.tree_max, total)
            self.stop.wait(self.period)


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run ``cmd``; wall time, peak RSS, and every output line with the second it arrived."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    lines = [(time.perf_counter() - t0, line.rstrip("\n")) for line in proc.stdout]
    rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if rc != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed (exit {rc}):\n" + "\n".join(t for _, t in lines[-40:]))
    mib = 1 << 20
    return {"wall_s": wall, "peak_rss_process_mib": sampler.proc_max / mib,
            "peak_rss_tree_mib": sampler.tree_max / mib, "lines": lines}


def nbgrader_venv(venv: Path) -> Path:
    if not (venv / "bin" / "nbgrader").exists():
        print(f"making {venv} (once; pip needs a package index)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        extra = ["ipykernel", f"numpy=={__import__('numpy').__version__}"]  # the kernel runs the numpy answers
        if subprocess.run(pip + [NBGRADER] + extra).returncode != 0:
            print(f"{NBGRADER} not installable; trying the newest 0.9.x")
            subprocess.run(pip + [NBGRADER_FALLBACK] + extra, check=True)
    return venv


def nbgrader_env(venv: Path, work: Path) -> dict:
    # its venv's bin first on PATH: nbgrader runs `alembic` by name to set up the gradebook
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv),
               JUPYTER_CONFIG_DIR=str(work / "jupyter-config"))  # no user config leaks in
    env.pop("PYTHONPATH", None)
    return env


def run_nbgrader(venv: Path, work: Path, n: int, skip: bool) -> tuple[dict | None, Path, str | None]:
    """Course folder, release, submissions; then the timed autograde. Returns (timing, release, version)."""
    course, env = work / "course", nbgrader_env(venv, work)
    shutil.rmtree(course, ignore_errors=True)
    (course / "source" / "ps1").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n")
    nbformat.write(source_notebook(), course / "source" / "ps1" / "ps1.ipynb")
    release = course / "release" / "ps1" / "ps1.ipynb"
    if skip and not (venv / "bin" / "nbgrader").exists():
        from edgekit.grading import release as ek_release

        ek_release(course / "source" / "ps1" / "ps1.ipynb", release.parent)  # same stubs, no nbgrader
        return None, release, None
    nbg = str(venv / "bin" / "nbgrader")
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import nbgrader; print(nbgrader.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    timed([nbg, "generate_assignment", "ps1", "--force"], course, env)  # also adds ps1 to the gradebook
    released = nbformat.read(release, as_version=4)
    for i in range(n):
        dest = course / "submitted" / f"s{i:02d}" / "ps1" / "ps1.ipynb"
        dest.parent.mkdir(parents=True)
        nbformat.write(submission(released, i), dest)
    if skip:
        return None, release, version
    print(f"nbgrader {version}: autograde {n} submissions (one after the other)...")
    r = timed([nbg, "autograde", "ps1", "--force"], course, env)  # students are created in the db as met
    # nbgrader logs "Autograding ..." as it starts each notebook: the gaps are per-submission times
    starts = [t for t, line in r["lines"] if "Autograding" in line and ".ipynb" in line]
    r["per_submission_s"] = [b - a for a, b in zip(starts, starts[1:] + [r["wall_s"]])]
    timed([nbg, "export", "--to", str(work / "nbgrader-grades.csv")], course, env)
    with open(work / "nbgrader-grades.csv") as f:
        r["scores"] = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    r["jobs"] = 1
    return r, release, version


def run_edgekit(work: Path, n: int, jobs: int | None) -> dict:
    source = work / "course" / "source" / "ps1" / "ps1.ipynb"
    subs, out = work / "edgekit" / "submissions", work / "edgekit" / f"out-jobs{jobs or 'all'}"
    shutil.rmtree(out, ignore_errors=True)  # no cached reference, nothing to resume
    cmd = [sys.executable, "-m", "edgekit", "grade", str(source), str(subs), "--out", str(out), "--force"]
    cmd += ["--jobs", str(jobs)] if jobs else []
    print(f"edgekit: grade {n} submissions, jobs={jobs or 'all cores'}...")
    r = timed(cmd, work)
    r["per_submission_s"] = [json.loads((out / f"s{i:02d}" / "results.json").read_text())["execution_time"]
                             for i in range(n)]
    with open(out / "grades.csv") as f:
        r["scores"] = {row["student"]: float(row["score"]) for row in csv.DictReader(f)}
    r["jobs"] = jobs or os.cpu_count()
    r["command"] = " ".join(cmd)
    return r


def summary(r: dict, n: int) -> dict:
    per = r["per_submission_s"]
    return {"jobs": r["jobs"], "total_wall_s": round(r["wall_s"], 3), "wall_per_submission_s": round(r["wall_s"] / n, 4),
            "per_submission_median_s": round(statistics.median(per), 4),
            "per_submission_mean_s": round(statistics.fmean(per), 4),
            "peak_rss_process_mib": round(r["peak_rss_process_mib"], 1), "peak_rss_tree_mib": round(r["peak_rss_tree_mib"], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--submissions", type=int, default=20)
    p.add_argument("--skip-nbgrader", action="store_true", help="time edgekit only (nbgrader still releases, if installed)")
    p.add_argument("--work", default="benchmarks/.work/grading")
    p.add_argument("--venv", default=str(Path.home() / ".cache" / "edgekit-bench" / "nbgrader-venv"))
    p.add_argument("--out", default="benchmarks/results/grading.json")
    args = p.parse_args()
    t_start, n, work = time.perf_counter(), args.submissions, Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    venv = Path(args.venv) if args.skip_nbgrader else nbgrader_venv(Path(args.venv))
    nbg, release, nbg_version = run_nbgrader(venv, work, n, args.skip_nbgrader)
    released = nbformat.read(release, as_version=4)
    shutil.rmtree(work / "edgekit", ignore_errors=True)
    for i in range(n):  # edgekit's layout: SUBMISSIONS/<student>/<name>.ipynb, same notebooks
        dest = work / "edgekit" / "submissions" / f"s{i:02d}" / "ps1.ipynb"
        dest.parent.mkdir(parents=True)
        nbformat.write(submission(released, i), dest)
    runs = {"edgekit": run_edgekit(work, n, None), "edgekit_jobs1": run_edgekit(work, n, 1)}
    if nbg:
        runs = {"nbgrader": nbg, **runs}

    expected = {f"s{i:02d}": expected_score(i) for i in range(n)}
    disagreements = []
    for s, want in expected.items():
        got = {tool: r["scores"].get(s) for tool, r in runs.items()}
        if any(v is None or abs(v - want) > 1e-6 for v in got.values()):
            disagreements.append({"student": s, "expected": want, "pattern": pattern(int(s[1:])), **got})

    result = {"benchmark": "grading", "command": "python benchmarks/grading.py" + "".join(
                  f" {a}" for a in sys.argv[1:]),
              "submissions": n, "questions": [{"grade_id": q[0], "points": q[1]} for q in QUESTIONS],
              "machine": {"cpu_count": os.cpu_count(), "fingerprint": ek.device_info().fingerprint,
                          "cpu_model": ek.device_info().cpu_model, "platform": platform.platform()},
              "versions": {"edgekit": ek.__version__, "nbgrader": nbg_version, "python": platform.python_version(),
                           "numpy": __import__("numpy").__version__, "nbformat": nbformat.__version__},
              "tools": {k: summary(r, n) for k, r in runs.items()},
              "edgekit_command": runs["edgekit"]["command"],
              "scores": {s: {"expected": w, **{k: r["scores"].get(s) for k, r in runs.items()}} for s, w in expected.items()},
              "disagreements": disagreements}
    t = result["tools"]
    if "nbgrader" in t:
        result["ratio_nbgrader_over_edgekit"] = {
            k: {"per_submission_median": t["nbgrader"]["per_submission_median_s"] / t[k]["per_submission_median_s"],
                "wall_per_submission": t["nbgrader"]["wall_per_submission_s"] / t[k]["wall_per_submission_s"]}
            for k in ("edgekit", "edgekit_jobs1")}
    goal_speedup = result.get("ratio_nbgrader_over_edgekit", {}).get("edgekit", {}).get("wall_per_submission")
    result["goals"] = {"edgekit_median_le_0.3s": t["edgekit"]["per_submission_median_s"] <= 0.3,
                       "edgekit_wall_per_submission_le_0.3s": t["edgekit"]["wall_per_submission_s"] <= 0.3,
                       "speedup_ge_4x_wall_per_submission": None if goal_speedup is None else goal_speedup >= 4}
    result["script_wall_s"] = round(time.perf_counter() - t_start, 1)

    console = Console()
    table = Table(title=f"Grading {n} submissions, 3 questions ({os.cpu_count()} cores, device {result['machine']['fingerprint']})")
    for col in ("tool", "jobs", "total s", "wall/sub s", "median/sub s", "mean/sub s", "peak RSS proc MiB",
                "peak RSS tree MiB", "nbgrader/this (wall/sub)"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for k, s in t.items():
        ratio = result.get("ratio_nbgrader_over_edgekit", {}).get(k, {}).get("wall_per_submission")
        table.add_row(k, str(s["jobs"]), f"{s['total_wall_s']:.2f}", f"{s['wall_per_submission_s']:.3f}",
                      f"{s['per_submission_median_s']:.3f}", f"{s['per_submission_mean_s']:.3f}",
                      f"{s['peak_rss_process_mib']:.0f}", f"{s['peak_rss_tree_mib']:.0f}",
                      f"{ratio:.1f}x" if ratio else "")
    console.print(table)
    console.print("median/sub: nbgrader from its log's gaps between notebooks; edgekit from results.json "
                  "execution_time (judge time, no worker start-up)")
    if disagreements:
        console.print(f"[red]{len(disagreements)} student(s) where a tool differs from the expected score:[/]")
        for d in disagreements:
            console.print(f"  {d}")
    else:
        console.print(f"scores: all {n} students agree across {', '.join(runs)} and with the expected totals")
    console.print(f"goals: {result['goals']}; script took {result['script_wall_s']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
