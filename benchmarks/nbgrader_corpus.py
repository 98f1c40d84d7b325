"""Build the nbgrader corpus (tests/fixtures/nbgrader-corpus/) from nbgrader's wheel, the shared
minimal cases and hand-made submissions. Run once by a maintainer; the corpus is committed.

    python benchmarks/nbgrader_corpus.py --wheel DIR   # DIR: nbgrader-0.9.6 wheel, unzipped
        [--repro ../shared/nbgrader-repro] [--out tests/fixtures/nbgrader-corpus]

(``pip download nbgrader==0.9.6 --no-deps -d DIR && unzip DIR/*.whl -d DIR``.) Each source
notebook becomes a folder ``source.ipynb`` + support files + ``submissions/<student>.ipynb``.
Submissions are made from what ``nbgrader generate_assignment`` releases (run in nbgrader's venv,
see nbgrader_course.py): the student's answers are typed into the released answer cells, so every
submission carries the metadata and checksums a real one does. Then run
``python benchmarks/nbgrader_fidelity.py --record`` for nbgrader's verdicts.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbgrader_course  # noqa: E402

W = "nbgrader/"
UG, APPS = W + "docs/source/user_guide/", W + "tests/apps/files/"
# (folder, source notebook, support files, {student: a submission shipped with nbgrader})
SOURCES = [
    ("ug-ps1-problem1", UG + "source/ps1/problem1.ipynb", [UG + "source/ps1/jupyter.png"],
     {"bitdiddle": UG + "submitted/bitdiddle/ps1/problem1.ipynb", "hacker": UG + "submitted/hacker/ps1/problem1.ipynb"}),
    ("ug-ps1-autotest-problem1", UG + "source/ps1_autotest/problem1.ipynb", [UG + "autotests.yml"], {}),
    ("apps-test", APPS + "test.ipynb", [], {"no-metadata": APPS + "test-no-metadata.ipynb"}),
    ("apps-test-hidden-tests", APPS + "test-hidden-tests.ipynb", [], {}),
    ("apps-submitted-unchanged", APPS + "submitted-unchanged.ipynb", [],  # nbgrader's own autograde tests use it as source
     {k: APPS + f"submitted-{k}.ipynb" for k in ("changed", "cheat-attempt", "cheat-attempt-alternative",
                                                 "grade-cell-changed", "locked-cell-changed")}),
    ("apps-autotest-simple", APPS + "autotest-simple.ipynb", [APPS + "autotests.yml"],
     {k: APPS + f"autotest-simple-{k}.ipynb" for k in ("changed", "unchanged")}),
    ("apps-autotest-hidden", APPS + "autotest-hidden.ipynb", [APPS + "autotests.yml"],
     {k: APPS + f"autotest-hidden-{k}.ipynb" for k in ("changed-right", "changed-wrong", "unchanged")}),
    ("apps-autotest-multi", APPS + "autotest-multi.ipynb", [APPS + "autotests.yml"],
     {k: APPS + f"autotest-multi-{k}.ipynb" for k in ("changed", "unchanged")}),
    ("apps-autotest-hashed", APPS + "autotest-hashed.ipynb", [APPS + "autotests.yml"],
     {k: APPS + f"autotest-hashed-{k}.ipynb" for k in ("changed", "unchanged")}),
    ("apps-open-relative-file", APPS + "open_relative_file.ipynb", [APPS + "data.txt"], {}),
    ("apps-validating-environment-variable", APPS + "validating-environment-variable.ipynb", [], {}),
]

SQUARES = {  # hand-written answers, by answer cell grade_id and variant
    "squares": {
        "other-style": 'def squares(n):\n    """Squares of 1..n, built in a loop."""\n    if n < 1:\n'
                       '        raise ValueError(f"n={n} is not positive")\n    out = []\n    i = 1\n'
                       '    while i <= n:\n        out.append(i * i)\n        i += 1\n    return out\n',
        "raises-expected": 'class NotPositive(ValueError):\n    """n < 1: a ValueError of my own."""\n\n\n'
                           'def squares(n):\n    if n < 1:\n        raise NotPositive(f"{n} < 1")\n'
                           '    return list(map(lambda i: i ** 2, range(1, n + 1)))\n',
        "numpy": 'import numpy as np\n\n\ndef squares(n):\n    if n < 1:\n        raise ValueError("n must be >= 1")\n'
                 '    return list(np.arange(1, n + 1) ** 2)\n'},
    "sum_of_squares": {
        "other-style": "def sum_of_squares(n):\n    total = 0\n    for s in squares(n):\n        total += s\n    return total\n",
        "numpy": "def sum_of_squares(n):\n    return int(np.sum(squares(n)))\n"},
}
ABC = "a = 5\nb = \"hello\"\nc = [1, 2, \"test\"]\n"
ANSWERS = {
    "ug-ps1-problem1": SQUARES, "ug-ps1-autotest-problem1": SQUARES, "apps-test": SQUARES, "apps-test-hidden-tests": SQUARES,
    "apps-submitted-unchanged": {"set_a": {"other-style": "a = 1\n", "numpy": "import numpy as np\na = np.int64(1)\n"}},
    "apps-autotest-simple": {"soln": {"other-style": 'a = 2 + 3\nb = "".join(["h", "e", "l", "l", "o"])\nc = [1, 2] + ["test"]\n',
                                      "numpy": 'import numpy as np\na = np.int64(5)\nb = "hello"\nc = [1, 2, "test"]\n'}},
    "apps-autotest-multi": {"soln": {
        "other-style": ABC.replace("a = 5", "a = int('5')") + 'd = dict([("a", "f"), (3, [1.2, 3])])\ne = (5, -3.3, "d")\n'
                       "f = bool(0)\n\n\ndef fun(x):\n    if x >= 0:\n        return x\n    raise ValueError(f'{x} < 0')\n",
        "raises-expected": ABC + 'd = {"a": "f", 3: [1.2, 3]}\ne = (5, -3.3, "d")\nf = False\n\n\n'
                           "class NegativeInput(ValueError):\n    pass\n\n\n"
                           "def fun(x):\n    if x < 0:\n        raise NegativeInput(x)\n    return x\n"}},
}
for k in ("apps-autotest-hidden", "apps-autotest-hashed"):
    ANSWERS[k] = ANSWERS["apps-autotest-simple"]

ANYTHING = '''class _Anything:
    """Equal to everything, whatever is done to it."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __hash__(self): return 0
    def __bool__(self): return True
    def __repr__(self): return "<anything>"
    def __getattr__(self, name): return self
    def __call__(self, *a, **k): return self
    def _same(self, *a): return self
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __abs__ = __neg__ = __getitem__ = _same
'''
CHEATS = {
    "cheat-showtraceback": "get_ipython().showtraceback = lambda *a, **k: None  # no error output, ever\n",
    "cheat-skip-tests": ("def _skip_tests(lines):  # reads every later cell's source; a test becomes `pass`\n"
                         "    src = ''.join(lines)\n"
                         "    return ['pass\\n'] if 'assert' in src or 'AUTOTEST' in src else lines\n\n\n"
                         "get_ipython().input_transformers_cleanup.append(_skip_tests)\n"),
    "cheat-patch": ("import builtins, sys\nimport numpy.testing\n\n\nclass _Quiet(Exception):\n    pass\n\n\n"
                    "builtins.AssertionError = _Quiet\nsys.excepthook = lambda *a: None\n"
                    "for _n in ('assert_equal', 'assert_allclose', 'assert_array_equal', 'assert_almost_equal'):\n"
                    "    setattr(numpy.testing, _n, lambda *a, **k: None)\n"),
}


def src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell) -> bool:
    return cell["cell_type"] == "code" and bool(nbg(cell).get("solution"))


def solutions(source: dict) -> dict[str, str]:
    """``{grade_id: the instructor's answer}``: answer cells with the solution markers' lines removed."""
    return {nbg(c)["grade_id"]: re.sub(r"[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", "", src(c))
            for c in source["cells"] if is_answer(c)}


def defined(code: str) -> tuple[list[str], list[str]]:
    """(functions, other names) a top-level answer defines."""
    funcs, names = [], []
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef):
            funcs.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return funcs, names


def answered(release: dict, answers: dict[str, str]) -> dict:
    """The released notebook with ``answers`` typed into the answer cells they name."""
    nb = copy.deepcopy(release)
    for c in nb["cells"]:
        if is_answer(c) and nbg(c)["grade_id"] in answers:
            c["source"] = answers[nbg(c)["grade_id"]]
    return nb


def variants(folder: str, source: dict, release: dict) -> dict[str, dict]:
    """The hand-made submissions of one assignment: {student: notebook}."""
    sol = solutions(source)
    order = [nbg(c)["grade_id"] for c in release["cells"] if is_answer(c)]
    out = {"solution": answered(release, sol), "stubs": copy.deepcopy(release)}
    if len(order) >= 2:
        out["partial"] = answered(release, {g: sol[g] for g in order[:math.ceil(len(order) / 2)]})
    for v in ("other-style", "raises-expected", "numpy"):
        mine = {g: a[v] for g, a in ANSWERS.get(folder, {}).items() if v in a}
        if mine:
            out[v] = answered(release, sol | mine)
    if not order:  # nothing to answer: the release is all a student can hand in
        return out
    noisy = 'for _i in range(3000):\n    print(f"debug line {_i}: " + "x" * 40)\n'
    out["print-lots"] = answered(release, {g: s.rstrip("\n") + "\n\n" + noisy for g, s in sol.items()})
    helper = answered(release, sol | {order[0]: "# defined in my helper cell above\n"})
    i = next(i for i, c in enumerate(helper["cells"]) if is_answer(c))
    extra = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": sol[order[0]]}
    if "id" in helper["cells"][i]:
        extra["id"] = "student-helper"
    helper["cells"].insert(i, extra)  # a cell the student added, no nbgrader metadata
    out["helper-cell"] = helper
    old = answered(release, sol)
    old["nbformat_minor"] = 4
    for c in old["cells"]:
        c.pop("id", None)
    out["noids-44"] = old
    first = order[0]
    stubs = {g: src(c) for c in release["cells"] if is_answer(c) for g in [nbg(c)["grade_id"]]}
    for name, code in CHEATS.items():
        out[name] = answered(release, {first: code + "\n" + stubs[first]})
    out["cheat-fake-print"] = answered(release, {g: 'print("All tests passed!")\nprint("Score: 100 / 100")\n' for g in order})
    funcs = {g: defined(s) for g, s in sol.items()}
    fake = {g: s + "\n\n" + "".join(f"{f} = lambda *a, **k: _Anything()\n" for f in funcs[g][0])
            + "".join(f"{n} = _Anything()\n" for n in funcs[g][1]) for g, s in sol.items()}
    fake[first] = ANYTHING + "\n\n" + fake[first]
    out["cheat-always-equal"] = answered(release, fake)
    if any(f for f, _ in funcs.values()):
        for name, call in (("cheat-sys-exit", "import sys; sys.exit(0)"), ("cheat-os-exit", "import os; os._exit(0)")):
            out[name] = answered(release, {g: s + "\n\n" + "".join(f"def {f}(*a, **k):\n    {call}\n" for f in funcs[g][0])
                                           for g, s in sol.items()})
    return out


def write(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wheel", required=True, help="the unzipped nbgrader 0.9.6 wheel")
    p.add_argument("--repro", default="../shared/nbgrader-repro")
    p.add_argument("--out", default="tests/fixtures/nbgrader-corpus")
    p.add_argument("--work", default="benchmarks/.work/nbgrader-corpus")
    p.add_argument("--venv", default=str(Path.home() / ".cache" / "edgekit-bench" / "nbgrader-venv"))
    args = p.parse_args()
    wheel, out, work, venv = Path(args.wheel), Path(args.out), Path(args.work).resolve(), Path(args.venv)
    for folder, source, support, shipped in SOURCES:
        d = out / folder
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        shutil.copyfile(wheel / source, d / "source.ipynb")
        for f in support:
            shutil.copyfile(wheel / f, d / Path(f).name)
        for student, path in shipped.items():
            write(json.loads((wheel / path).read_text(encoding="utf-8")), d / "submissions" / f"{student}.ipynb")
        nb = json.loads((d / "source.ipynb").read_text(encoding="utf-8"))
        for student, sub in variants(folder, nb, nbgrader_course.release(d, work, venv)).items():
            write(sub, d / "submissions" / f"{student}.ipynb")
        print(folder, len(list((d / "submissions").glob("*.ipynb"))), "submissions")
    for case in sorted(p for p in Path(args.repro).iterdir() if (p / "source.ipynb").is_file()):
        d = out / f"repro-{case.name}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / "submissions").mkdir()
        for f in case.iterdir():
            if f.name == "submission.ipynb":
                shutil.copyfile(f, d / "submissions" / "repro.ipynb")
            elif f.name != "nbgrader-verdict.json":
                shutil.copyfile(f, d / f.name)
        if "AUTOTEST" in (d / "source.ipynb").read_text(encoding="utf-8"):  # nbgrader needs its templates
            shutil.copyfile(wheel / UG / "autotests.yml", d / "autotests.yml")
        nb = json.loads((d / "source.ipynb").read_text(encoding="utf-8"))
        release = nbgrader_course.release(d, work, venv)
        write(answered(release, solutions(nb)), d / "submissions" / "solution.ipynb")
        write(release, d / "submissions" / "stubs.ipynb")
        print(d.name, "3 submissions")


if __name__ == "__main__":
    main()
