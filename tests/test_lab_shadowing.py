"""A blank notebook that shadows the notebook's functions scores 0 in every lab (issue 13, point 5).

The grader asks the student's process for values by name, so whatever a name computes there is the
student's claim. A lab whose case reads a notebook helper (``int8_accuracy()``, ``rewrite_diff()``)
or accepts a degenerate answer (a "max error" of 0 under an upper bound only) gives points to a
student who wrote nothing. Each submission below is the released notebook (every answer a stub)
plus, at the top of every answer cell and in a cell added at the end, code that a determined
student could write:

- ``oracle``: every helper of the context cells is replaced by the *instructor's own* helper,
  run on the instructor's solutions (exec'd from a copy of the lab notebook): the best-looking
  value a helper can give. The answers stay stubs.
- ``0``, ``1.0``, ``-inf``, ``nan``, ``True``, ``None``, ``[]``, ``{}``: every function of the
  notebook, helpers and answers alike, and every function of the lab's support modules (patched
  in place), returns that constant.

A background thread keeps the replacements bound, so context cells that run after the answer
cells (today's grader re-runs the instructor's copies) cannot undo them. Every variant must
score 0. The rule this holds the labs to is in labs/README.md ("Verdicts").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgekit.grading import grade_batch, load_lab
from edgekit.grading.kernel import python_of as plain_python
from edgekit.grading.notebook import read_notebook, role

ROOT = Path(__file__).parents[1]
LABS = sorted(p for p in (ROOT / "labs").iterdir() if (p / "lab.toml").is_file()) if (ROOT / "labs").is_dir() else []
NOTEBOOKS = ROOT / "notebooks"
CONSTANTS = {"zero": "0", "one": "1.0", "minus-inf": "float('-inf')", "nan": "float('nan')", "true": "True",
             "none": "None", "empty-list": "[]", "empty-dict": "{}"}

# one grading batch per lab, every variant a student of it: about 4 minutes for the 12 labs on 2 busy cores
pytestmark = [pytest.mark.skipif(not LABS, reason="no labs in labs/ yet"), pytest.mark.slow]


def defined_names(source: str, lab_dir: Path) -> list[str]:
    """Functions and classes a cell defines, and names it imports from the lab's own support modules."""
    try:
        tree = ast.parse(plain_python(source))
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module and (lab_dir / f"{node.module}.py").is_file():
            names += [a.asname or a.name for a in node.names if a.name != "*"]
    return names


def notebook_names(lab_dir: Path, nb) -> tuple[list[str], list[str]]:
    """(helpers of the context cells, functions of the answer cells) of a notebook."""
    helpers, answers = [], []
    for cell in nb.cells:
        kind = role(cell)[0]
        if kind == "context":
            helpers += defined_names(cell.source, lab_dir)
        elif kind == "answer":
            answers += defined_names(cell.source, lab_dir)
    return sorted(set(helpers)), sorted(set(answers) - set(helpers))


KEEP_BOUND = '''
def _shadow_keep(g=globals(), shadows=_SHADOWS):
    import time
    while True:  # rebind whatever a later cell defined again
        for k, v in shadows.items():
            if g.get(k) is not v:
                g[k] = v
        time.sleep(0.001)


globals().update(_SHADOWS)
if "_shadow_thread" not in globals():
    import threading
    _shadow_thread = threading.Thread(target=_shadow_keep, daemon=True)
    _shadow_thread.start()
'''


PATCH_SUPPORT = '''
import os
import sys
import types

for _shadow_module in list(sys.modules.values()):  # the lab's support modules: every public function too
    if os.path.dirname(os.path.abspath(getattr(_shadow_module, "__file__", None) or "/")) == os.getcwd():
        for _shadow_name, _shadow_value in list(vars(_shadow_module).items()):
            if isinstance(_shadow_value, types.FunctionType) and not _shadow_name.startswith("_"):
                setattr(_shadow_module, _shadow_name, _shadow_constant)
'''


def constant_shadow(names: list[str], value: str) -> str:
    """Code that binds every name in ``names``, and every function of the lab's support modules, to a
    function returning ``value``, and keeps the names bound."""
    return (f"def _shadow_constant(*args, **kwargs):\n    return {value}\n\n\n"
            f"_SHADOWS = {{name: _shadow_constant for name in {names!r}}}\n" + PATCH_SUPPORT + KEEP_BOUND)


def oracle_shadow(names: list[str], instructor_cells: list[str]) -> str:
    """Code that binds every helper in ``names`` to the instructor's own, run on the instructor's solutions."""
    return (f"if '_shadow_ref' not in globals():\n"
            f"    _shadow_ref = {{'__name__': '__main__', 'display': print}}\n"
            f"    for _shadow_src in {instructor_cells!r}:\n"
            f"        try:\n"
            f"            exec(_shadow_src, _shadow_ref)\n"
            f"        except Exception:\n"
            f"            pass\n"
            f"_SHADOWS = {{name: _shadow_ref[name] for name in {names!r} if name in _shadow_ref}}\n" + KEEP_BOUND)


def shadowed_submission(released, code: str):
    """The released notebook with ``code`` on top of every answer cell and in a cell added at the end."""
    import nbformat

    nb = read_notebook(released)
    for cell in nb.cells:
        if role(cell)[0] == "answer":
            cell.source = code + "\n\n" + cell.source
    nb.cells.append(nbformat.v4.new_code_cell(code))
    return nb


@pytest.mark.parametrize("lab_dir", LABS, ids=[p.name for p in LABS])
def test_blank_notebook_with_shadowed_functions_scores_zero(lab_dir, tmp_path):
    import nbformat

    lab = load_lab(lab_dir)
    released = NOTEBOOKS / lab.id / f"{lab.id}.ipynb"
    helpers, answers = notebook_names(lab_dir, read_notebook(released))
    instructor = [plain_python(c.source) for c in lab.notebook().cells if role(c)[0] in ("context", "answer")]
    variants = {name: constant_shadow(helpers + answers, value) for name, value in CONSTANTS.items()}
    if helpers:
        variants["oracle"] = oracle_shadow(helpers, instructor)
    for name, code in variants.items():
        (tmp_path / "subs" / name).mkdir(parents=True)
        nbformat.write(shadowed_submission(released, code), tmp_path / "subs" / name / f"{lab.id}.ipynb")
    res = grade_batch(lab_dir, tmp_path / "subs", tmp_path / "out", jobs=2, progress=False)
    scored = {r["student"]: (r["score"], [t["name"] for t in r["tests"] if t.get("status") == "passed"])
              for r in res.records if r["score"] != 0 or r["status"] != "graded"}
    assert not scored, (f"{lab.id}: helpers {helpers}, answers {answers}; variants that scored, "
                        f"with the cases they passed: {scored}")
