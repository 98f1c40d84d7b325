"""edgekit.grading.assemble: the student's cells in their order, the instructor's cells restored,
matched by metadata, then id, then released source — with and without cell ids (nbformat 4.0-4.5)."""

import copy
from pathlib import Path

import nbformat

from edgekit.grading import load_lab, release
from edgekit.grading.assemble import assemble
from edgekit.grading.notebook import read_notebook, role

DEMO = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
NBGRADER = Path(__file__).parent / "fixtures" / "nbgrader" / "ps1.ipynb"


def _released(tmp_path):
    (nb_path, _) = release(DEMO, tmp_path / "rel")
    return read_notebook(nb_path)


def _solved(tmp_path):
    """The released demo notebook with the reference answers filled in, and those answers by question."""
    nb = _released(tmp_path)
    src = {role(c)[1]: c.source for c in read_notebook(DEMO / "lab.ipynb").cells if role(c)[0] == "answer"}
    for c in nb.cells:
        if role(c)[0] == "answer":
            c.source = src[role(c)[1]]
    return nb, src


def _answer(nb, qid):
    return next(c for c in nb.cells if role(c) == ("answer", qid))


def _code(source, **meta):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update(meta)
    return cell


def _without_ids(nb):
    nb = copy.deepcopy(nb)
    nb.nbformat_minor = 4
    for c in nb.cells:
        c.pop("id", None)
    return nb


def test_added_cells_run_in_the_students_order_and_context_comes_from_the_instructor(tmp_path):
    lab = load_lab(DEMO)
    nb = _released(tmp_path)
    q1 = _answer(nb, "q1")
    q1.source = "def softmax(x):\n    return helper(x)"
    nb.cells.insert(nb.cells.index(q1), _code("def helper(x):\n    return 'mine'"))  # JupyterLab's "+"
    setup = next(c for c in nb.cells if c.get("id") == "setup")
    setup.source = "import numpy as np\nnp.allclose = lambda *a, **k: True"  # an edited context cell
    prog = assemble(lab.notebook(), nb)
    runs = [(c.kind, c.owner, c.source) for c in prog.runnable]
    kinds = [k for k, _, _ in runs]
    assert kinds == ["context", "added", "answer", "answer", "answer"], runs
    assert runs[1][2].startswith("def helper") and runs[2][2].endswith("return helper(x)")
    assert "np.allclose" not in "".join(s for _, _, s in runs) and "ek.checker" in runs[0][2]
    assert not prog.missing and not prog.notes
    assert all(c.kind in ("check", "context", "added", "answer") for c in prog.cells)


def test_duplicates_all_run_deleted_answers_are_noted_lost_metadata_is_found_by_id(tmp_path):
    lab = load_lab(DEMO)
    nb = _released(tmp_path)
    q1, q2, q3 = (_answer(nb, q) for q in ("q1", "q2", "q3"))
    q1.source, q3.source = "def softmax(x):\n    return 1", "def top_k(p, k):\n    return [3]"
    q3.metadata = {}  # metadata lost: found by its cell id
    fixed = copy.deepcopy(q1)
    fixed.id, fixed.source = "fixed-copy", "def softmax(x):\n    return 2"
    nb.cells.insert(nb.cells.index(q1) + 1, fixed)  # a fixed copy kept below the broken one
    nb.cells.remove(q2)
    prog = assemble(lab.notebook(), nb)
    answers = [(c.question, c.source) for c in prog.runnable if c.kind == "answer"]
    assert answers == [("q1", q1.source), ("q1", fixed.source), ("q3", q3.source)], answers
    assert prog.missing == {"q2"}
    assert any("q2" in n and "not found" in n for n in prog.notes), prog.notes
    assert any("q1" in n and "last definition wins" in n for n in prog.notes), prog.notes


def test_nbgrader_without_cell_ids_matches_answers_by_grade_id_and_restores_hidden_tests(tmp_path):
    lab = load_lab(NBGRADER)
    (released,) = release(NBGRADER, tmp_path)
    nb = _without_ids(read_notebook(released))
    src = _without_ids(lab.notebook())
    for c in nb.cells:
        if role(c) == ("answer", "squares"):
            c.source = "def squares(n):\n    return [i * i for i in range(1, n + 1)]"
    test_mean = next(c for c in nb.cells if role(c) == ("test", "test_mean"))
    nb.cells.remove(test_mean)  # a deleted test cell comes back at its place
    nb.cells.insert(2, _code("import math"))  # an unmarked cell: the student's in nbgrader
    prog = assemble(src, nb, "nbgrader")
    run = [(c.kind, c.owner, c.question) for c in prog.runnable]
    assert run == [("locked", "instructor", "imports"), ("context", "student", None),
                   ("answer", "student", "squares"), ("test", "instructor", "test_squares"),
                   ("answer", "student", "mean_of"), ("test", "instructor", "test_mean")], run
    tests = {c.question: c.source for c in prog.runnable if c.kind == "test"}
    assert "squares(0) == []" in tests["test_squares"]  # hidden tests are back
    assert prog.runnable[2].source.endswith("range(1, n + 1)]")
    assert "(restored)" in prog.runnable[-1].label


def test_edgekit_without_ids_finds_context_cells_by_their_source(tmp_path):
    lab = load_lab(DEMO)
    nb = _without_ids(_released(tmp_path))
    src = _without_ids(lab.notebook())
    nb.cells.insert(3, _code("def bgr_to_rgb(x):\n    return x[..., ::-1]"))
    prog = assemble(src, nb)
    run = [(c.kind, c.owner) for c in prog.runnable]
    assert run == [("context", "instructor"), ("added", "student"), ("answer", "student"), ("answer", "student"),
                   ("answer", "student")], run


def test_self_check_assembles_the_students_notebook_alone_with_the_same_skips(tmp_path):
    nb = _released(tmp_path)
    nb.cells.append(_code("x = 1"))
    prog = assemble(None, nb)
    assert [c.kind for c in prog.cells] == ["context", "answer", "check", "answer", "check", "answer", "check", "context"]
    assert [c.kind for c in prog.runnable] == ["context", "answer", "answer", "answer", "context"]


def test_an_added_helper_cell_counts_in_check_edgekit_check_and_grade_alike(tmp_path):
    """One program for all three: a helper in a cell of the student's own is defined everywhere."""
    import json

    from edgekit.grading import check_notebook, grade_batch
    from edgekit.grading.selfcheck import _Globals, run_checks
    from edgekit.grading.kernel import Kernel

    nb, _ = _solved(tmp_path)
    q2 = _answer(nb, "q2")
    q2.source = "def to_nchw(image):\n    return bgr_free(image)"  # uses a helper from the student's own cell
    nb.cells.insert(nb.cells.index(q2), _code(
        "def bgr_free(image):\n    x = image.astype(np.float32) / 255.0\n    return x.transpose(2, 0, 1)[None]"))
    path = tmp_path / "rel" / "lab00-demo" / "lab00-demo.ipynb"
    nbformat.write(nb, path)
    # edgekit check: runs the saved notebook
    assert all(r.passed for r in check_notebook(path)), [str(r) for r in check_notebook(path)]
    # check() in Jupyter: the kernel's own namespace after running the cells
    kernel = Kernel(tracebacks=False)
    for cell in assemble(None, nb).runnable:
        assert kernel.run(cell.label, cell.source).ok, cell.label
    results = run_checks(json.loads((tmp_path / "rel" / "lab00-demo" / "lab00-demo.checks.json").read_text()),
                         _Globals(kernel.ns), ["q2"])
    assert results and all(r.passed for r in results), [str(r) for r in results]
    # edgekit grade: full marks, the same submission five times over gives the same scores
    for i in range(5):
        (tmp_path / "subs" / f"s{i}").mkdir(parents=True)
        nbformat.write(nb, tmp_path / "subs" / f"s{i}" / "lab00-demo.ipynb")
    res = grade_batch(DEMO, tmp_path / "subs", tmp_path / "out", jobs=2, progress=False)
    assert set(res.scores.values()) == {6.0}, res.scores


def test_grading_is_deterministic_for_a_notebook_that_draws_random_numbers(tmp_path):
    from edgekit.grading import grade_batch

    nb, src = _solved(tmp_path)
    # a top-k that is right only when an unseeded draw falls one way: luck must not change between runs
    _answer(nb, "q3").source = src["q3"] + "\nimport random\nif random.random() < 0.5:\n    top_k = None\n"
    for i in range(5):
        (tmp_path / "subs" / f"s{i}").mkdir(parents=True)
        nbformat.write(nb, tmp_path / "subs" / f"s{i}" / "lab00-demo.ipynb")
    res = grade_batch(DEMO, tmp_path / "subs", tmp_path / "out", jobs=2, progress=False)
    assert len(set(res.scores.values())) == 1, res.scores
