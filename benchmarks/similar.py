"""``edgekit similar`` on a synthetic class: how long 200 students take, what it flags and what it misses.

    python benchmarks/similar.py [--students 200] [--seed 0] [--work benchmarks/.work/similar]

Each student's lab01 notebook is the released one with every question answered by a random
program of 6 to 10 statements (assignments, calls, subscripts, arithmetic, if/for blocks) drawn
from a small grammar, so answers differ as students' do and chance overlaps (``N(N, N[0])``)
happen as they would. Every 20th student copies the previous student's q3 and q5 with every
name renamed, comments added and spacing changed: the planted copies. Printed: the seconds
compare() and report_html() took (one run, wall clock, this machine), the planted copies found
(recall), other pairs flagged (false alarms among independent random answers), and the pairs the
index fingerprint -> students visited against n(n-1)/2 per question.
"""

from __future__ import annotations

import argparse
import keyword
import random
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
QUESTIONS = ("q1", "q2", "q3", "q4", "q5")
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def program(r: random.Random, names: list[str]) -> str:
    """A random answer: 6 to 10 statements over ``names``."""
    ops = ["+", "-", "*", "/", "//", "%", "**"]

    def expr(d: int) -> str:
        pick = r.randrange(7 if d < 3 else 3)
        return [lambda: r.choice(names), lambda: str(r.randrange(100)), lambda: repr(r.choice("abc")),
                lambda: f"({expr(d + 1)} {r.choice(ops)} {expr(d + 1)})",
                lambda: f"{r.choice(names)}({', '.join(expr(d + 1) for _ in range(r.randrange(1, 4)))})",
                lambda: f"{r.choice(names)}[{expr(d + 1)}]",
                lambda: f"{r.choice(names)}.{r.choice(names)}({expr(d + 1)})"][pick]()

    def stmt(indent: str, d: int) -> str:
        pick = r.randrange(4 if d < 2 else 2)
        if pick < 2:
            return f"{indent}{r.choice(names)} = {expr(0)}\n"
        head = f"if {expr(1)} > {expr(1)}:" if pick == 2 else f"for {r.choice(names)} in {expr(1)}:"
        return f"{indent}{head}\n" + "".join(stmt(indent + "    ", d + 1) for _ in range(r.randrange(1, 3)))

    return "".join(stmt("", 0) for _ in range(r.randrange(6, 11)))


def disguise(source: str, tag: str) -> str:
    """``source`` with every name renamed, a comment on every other line and spacing changed."""
    out = []
    for i, line in enumerate(re.sub(r"\b([A-Za-z_]\w*)\b", lambda m: m.group(1) if keyword.iskeyword(m.group(1))
                                    else f"{m.group(1)}_{tag}", source).splitlines()):
        line = line.replace(" = ", "=").replace(", ", ",")
        out.append(line + ("  # my own work" if i % 2 else ""))
    return "\n".join(out) + "\n\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / ".work" / "similar"))
    args = ap.parse_args()

    from test_grading_similarity import LAB, write_submission

    from edgekit.grading import load_lab
    from edgekit.grading.similarity import compare, report_html

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    r = random.Random(args.seed)
    names = ["x", "y", "z", "img", "out", "arr", "h", "w", "scale", "size", "i", "n", "total", "np", "cv2", "f"]
    planted, answers = set(), {}
    for i in range(args.students):
        prev, answers = answers, {q: program(r, names) for q in QUESTIONS}
        if i % 20 == 19:
            for q in ("q3", "q5"):
                answers[q] = disguise(prev[q], f"s{i}")
                planted.add((q, f"student{i - 1:03d}", f"student{i:03d}"))
        write_submission(work, f"student{i:03d}", {q: f"# edgekit: answer {q}\n{a}" for q, a in answers.items()})
    lab = load_lab(LAB)
    t0 = time.perf_counter()
    sim = compare(lab, work)
    t1 = time.perf_counter()
    page = report_html(sim)
    t2 = time.perf_counter()
    found = {(m.question, m.a, m.b) for m in sim.matches}
    n = sim.students
    print(f"{n} students, 5 questions: compare {t1 - t0:.2f} s, report {t2 - t1:.2f} s ({len(page) / 1e6:.1f} MB)")
    print(f"planted copies found: {len(found & planted)} of {len(planted)}; other pairs flagged at "
          f"{sim.threshold:.0%}: {len(found - planted)}; answers not compared: {len(sim.skipped)}")
    print(f"pairs sharing a fingerprint (visited through the index): {sim.visited} of {5 * n * (n - 1) // 2}")
    for m in sorted(sim.matches, key=lambda m: (m.question, m.a, m.b) in planted)[:5]:
        print(f"  {m.score:.0%} {m.question} {m.a} {m.b}" + (" (planted)" if (m.question, m.a, m.b) in planted else ""))


if __name__ == "__main__":
    main()
