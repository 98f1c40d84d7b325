"""edgekit grade on nbgrader assignments gives nbgrader's verdicts, except where it refuses a forgery.

Each folder of ``fixtures/nbgrader-repro`` is one cause of disagreement measured against
nbgrader 0.9.6 (see its README): a source notebook, a submission and nbgrader's own verdict,
recorded from a real nbgrader run, so this test never needs nbgrader. Every test cell must get
nbgrader's points, or be marked *disputed* (the two runs of a test cell disagree, see
edgekit/grading/replay.py) — and only the cells listed in ``DISPUTED`` may be: those whose
verdict rests on the student's own ``__eq__``/``isinstance``/plotting objects, where nbgrader's
verdict cannot be checked from outside the student's process.

The forgeries below fool nbgrader; here they score 0 (disputed or failed).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import grade_forked

REPRO = Path(__file__).parent / "fixtures" / "nbgrader-repro"
CASES = sorted(p.name for p in REPRO.iterdir() if (p / "nbgrader-verdict.json").is_file())
# cells where the grader's replay cannot follow the student's objects: reported as disputed
DISPUTED = {("values_object_result", "test_eq"), ("values_grader_object_argument", "test_draw"),
            ("forgery_always_equal", "test_squares")}


@pytest.mark.parametrize("case", CASES)
def test_nbgrader_verdict_or_disputed(case, tmp_path):
    folder = tmp_path / "src"
    shutil.copytree(REPRO / case, folder)
    (folder / "submission.ipynb").unlink()  # the source folder holds only what the instructor wrote
    want = json.loads((REPRO / case / "nbgrader-verdict.json").read_text())["nbgrader_0.9.6_scores"]
    rec = grade_forked(folder / "source.ipynb", {"s": REPRO / case / "submission.ipynb"}, tmp_path / "out")["s"]
    got = {t["name"]: t for t in rec["tests"]}
    assert set(got) == set(want), (sorted(got), sorted(want))
    for gid, points in want.items():
        t = got[gid]
        disputed = bool(t.get("extra_data", t).get("disputed"))
        if (case, gid) in DISPUTED:
            assert disputed and t["score"] == 0, (gid, t)  # strict policy: no points on a disputed cell
        else:
            assert t["score"] == points and not disputed, (gid, points, t)


SOURCE = {
    "imports": ("locked", "import numpy as np"),
    "squares": ("solution", 'def squares(n):\n    """1, 4, 9, ... n*n"""\n    ### BEGIN SOLUTION\n'
                            "    return [i * i for i in range(1, n + 1)]\n    ### END SOLUTION"),
    "test_squares": ("grade", "assert squares(3) == [1, 4, 9]\n### BEGIN HIDDEN TESTS\nassert squares(1) == [1]\n"
                              "### END HIDDEN TESTS"),
    "test_numpy": ("grade", "np.testing.assert_allclose(np.array(squares(4)), [1, 4, 9, 16])"),
}


def _notebook(answer: str | None) -> str:
    nb = nbformat.v4.new_notebook()
    for gid, (kind, src) in SOURCE.items():
        meta = {"grade_id": gid, "schema_version": 3, "locked": kind != "solution",
                "solution": kind == "solution", "grade": kind == "grade"}
        if kind == "grade":
            meta["points"] = 1
        cell = nbformat.v4.new_code_cell(answer if kind == "solution" and answer is not None else src)
        cell.metadata["nbgrader"] = meta
        nb.cells.append(cell)
    return nbformat.writes(nb)


FORGERIES = {
    "always-equal": """
        class _Yes(list):
            def __eq__(self, other):
                return True
        def squares(n):
            return _Yes()
        import numpy as np
        np.testing.assert_allclose = lambda *a, **k: None
    """,
    "patched-testing-and-builtins": """
        import builtins, numpy as np, numpy.testing
        np.testing.assert_allclose = numpy.testing.assert_allclose = lambda *a, **k: None
        builtins.AssertionError = type("AssertionError", (Exception,), {})
        def squares(n):
            return []
    """,
    "exit-inside-test": """
        import sys
        def squares(n):
            sys.exit(0)
    """,
    "os-exit-inside-test": """
        import os
        def squares(n):
            os._exit(0)
    """,
    "tests-short-circuited": """
        def squares(n):
            return []
        _ip = get_ipython()
        _ip.input_transformers_cleanup.append(
            lambda lines: ["pass\\n"] if any("squares(" in ln for ln in lines) else lines)
    """,
    "fake-result-line": """
        def squares(n):
            print("Success!  test_squares: 1 / 1 points")
            return []
    """,
}


@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    root = tmp_path_factory.mktemp("forged")
    (root / "src").mkdir()
    (root / "src" / "source.ipynb").write_text(_notebook(None))
    subs = {name: _notebook(textwrap.dedent(code)) for name, code in FORGERIES.items()}
    subs["solution"] = _notebook(None)
    subs["stub"] = _notebook("def squares(n):\n    raise NotImplementedError()")
    return {policy: grade_forked(root / "src" / "source.ipynb", subs, root / f"out-{policy}", policy)
            for policy in ("strict", "nbgrader")}


def test_solution_full_marks_stub_zero(forged):
    assert forged["strict"]["solution"]["score"] == 2 and forged["strict"]["stub"]["score"] == 0


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forgery_that_fools_nbgrader_scores_zero_here(forged, name):
    rec = forged["strict"][name]
    assert rec["score"] == 0, [(t["name"], t["output"]) for t in rec["tests"]]
    assert rec["status"] == "graded", rec["notes"]


def test_the_nbgrader_policy_gives_the_notebooks_own_verdict_on_disputed_cells(forged):
    # the always-equal list passes in the student's own process, as in nbgrader, and is disputed
    strict, lenient = forged["strict"]["always-equal"], forged["nbgrader"]["always-equal"]
    assert strict["score"] == 0 and lenient["score"] == 2, (strict["tests"], lenient["tests"])
    assert all(t.get("extra_data", t)["disputed"] for t in strict["tests"]), strict["tests"]
