"""How fast the rubric grading page answers: ``edgekit review`` with 200 synthetic students.

    python benchmarks/review.py [--students 200] [--out benchmarks/results/review.json]

Builds a grades folder of N students (records written through ``results.write_student``, each
student a copy of the released lab11 notebook with a report of a few paragraphs, a code cell with
text and a PNG output), starts ``edgekit review`` in its own process (the real command) and times,
from a client keeping one connection open as a browser does:

* navigation, first visit of each student (its notebook read and rendered: the cold cache),
* navigation, second pass over all students (cached by notebook modification time),
* a save (gradebook transaction + that student's files + grades.csv of all N), then the next page.

Prints median and p95 in milliseconds and writes them to ``--out``. The target: navigation < 100 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "labs" / "lab11-capstone"
RELEASED = ROOT / "notebooks" / "lab11-capstone" / "lab11-capstone.ipynb"
REPORT = ("## Deployment report\n\nWe ship **int8**, 2 threads, batch 1: p50 0.41 ms (IQR 0.39-0.44) against "
          "1.02 ms for float32, a 2.5x speed-up, accuracy 97.8%.\n\n") * 6


def build(root: Path, n: int) -> tuple[Path, Path]:
    from edgekit.grading import load_lab
    from edgekit.grading.results import write_student

    lab = load_lab(LAB)
    nb = json.loads(RELEASED.read_text(encoding="utf-8"))
    png = base64.b64encode(os.urandom(30_000)).decode()  # an image-sized output (not a valid PNG: not decoded)
    nb["cells"].append({"cell_type": "code", "id": "extra", "execution_count": 3, "source": "plot()\n" * 5,
                        "metadata": {"edgekit": {"role": "answer", "question": "writeup"}},
                        "outputs": [{"output_type": "stream", "name": "stdout", "text": "p50 0.41 ms\n" * 20},
                                    {"output_type": "display_data", "metadata": {},
                                     "data": {"image/png": png, "text/plain": "<Figure>"}}]})
    subs, out = root / "subs", root / "out"
    for i in range(n):
        student = f"student{i:03d}"
        for cell in nb["cells"]:
            if cell.get("id") == "writeup":
                cell["source"] = f"Student {i}.\n\n" + REPORT
        (subs / student).mkdir(parents=True)
        (subs / student / "lab11-capstone.ipynb").write_text(json.dumps(nb), encoding="utf-8")
        questions = {q.id: {"score": 1.0, "max_score": q.points} for q in lab.auto_questions}
        tests = [{"name": f"{q} case {k}", "question": q, "visibility": "visible", "status": "passed", "score": 0.5,
                  "max_score": 0.5, "output": "ok " * 40, "weight": 1.0} for q in questions for k in range(8)]
        write_student(out / student, {"student": student, "lab": lab.id, "status": "graded", "score": 3.0,
                                      "max_score": lab.max_score, "questions": questions, "tests": tests,
                                      "notes": [], "output": "x" * 4000}, lab)
    return subs, out


def percentiles(ms: list[float]) -> dict:
    s = sorted(ms)
    return {"n": len(s), "median_ms": round(statistics.median(s), 2), "p95_ms": round(s[int(0.95 * (len(s) - 1))], 2),
            "max_ms": round(s[-1], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "review.json"))
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="edgekit-review-bench-"))
    t0 = time.perf_counter()
    subs, out = build(root, args.students)
    print(f"built {args.students} students in {time.perf_counter() - t0:.1f} s under {root}")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen([sys.executable, "-m", "edgekit.cli.main", "review", str(out), "--lab", str(LAB),
                               "--submissions", str(subs), "--grader", "bench"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
            if m:
                port, token = int(m.group(1)), m.group(2)
                break
        else:
            raise SystemExit("edgekit review did not print its URL")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        cookies = {}

        def request(method: str, path: str, body: dict | None = None) -> float:
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
            if body is not None:
                headers |= {"Content-Type": "application/json", "X-XSRFToken": cookies.get("_xsrf", "")}
            t = time.perf_counter()
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            r = conn.getresponse()
            data = r.read()
            ms = (time.perf_counter() - t) * 1000
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    cookies[name] = rest.split(";")[0]
            if r.status >= 400:
                raise SystemExit(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
            return ms

        request("GET", f"/q/writeup/student000?token={token}")
        students = [f"student{i:03d}" for i in range(args.students)]
        cold = [request("GET", f"/q/writeup/{s}") for s in students]
        warm = [request("GET", f"/q/writeup/{s}?filter=ungraded") for s in students]
        saves, after = [], []
        for i, s in enumerate(students[:50]):
            saves.append(request("POST", "/api/score", {"student": s, "question": "writeup", "points": i % 6,
                                                        "comment": "fine", "grader": "bench"}))
            after.append(request("GET", f"/q/writeup/{students[i + 1]}?filter=ungraded"))
        conn.close()
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    result = {"schema": "edgekit.bench.review/1", "students": args.students,
              "navigation_cold": percentiles(cold), "navigation_warm": percentiles(warm),
              "save": percentiles(saves), "navigation_after_save": percentiles(after),
              "target_ms": 100, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                            "platform": platform.platform()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": "python benchmarks/review.py " + " ".join(sys.argv[1:])}
    for k in ("navigation_cold", "navigation_warm", "save", "navigation_after_save"):
        print(f"{k:22s} median {result[k]['median_ms']:7.2f} ms   p95 {result[k]['p95_ms']:7.2f} ms   "
              f"max {result[k]['max_ms']:7.2f} ms   (n={result[k]['n']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
