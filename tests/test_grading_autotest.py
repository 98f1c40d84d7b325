"""nbgrader AUTOTEST directives expand exactly as in nbgrader 0.9.6, so a stub no longer passes them.

The oracle is real nbgrader: tests/fixtures/autotest/record.py ran ``generate_assignment`` and
``autograde`` on fixtures/autotest/source.ipynb (one directive per value type, hashed and not) and
recorded each released test cell and each cell's score for the solution and for the release stubs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit._errors import MissingExtraError
from edgekit.grading.autotest import (DEFAULT_TEMPLATES, AutotestError, display_text, expand,
                                      expand_notebook, find_templates, load_templates,
                                      namespace_executor)
from edgekit.grading.autotest import _render
from edgekit.grading.kernel import Kernel


def fresh_namespace() -> dict:
    return {"__name__": "__main__"}  # as in a kernel: classes defined in cells live in __main__


def run_cells(cells, ns):
    """``[(label, error or None)]`` of cells run in ``ns`` as the grader runs them (IPython)."""
    kernel = Kernel(ns=ns, tracebacks=False)
    return [(label, kernel.run(label, source).error) for label, source in cells]


FIXTURES = Path(__file__).parent / "fixtures" / "autotest"
RECORDED = json.loads((FIXTURES / "nbgrader-0.9.6.json").read_text())
SOURCE = json.loads((FIXTURES / "source.ipynb").read_text())  # nbformat stores sources as lists of lines
TEST_CELLS = [c for c in RECORDED["cells"] if c["grade"]]


@pytest.fixture(scope="module")
def expanded() -> list[str]:
    return expand_notebook(SOURCE["cells"], namespace_executor(fresh_namespace()))


@pytest.mark.parametrize("cell", TEST_CELLS, ids=[c["source"].splitlines()[-1][:40] for c in TEST_CELLS])
def test_expansion_is_nbgraders_code(expanded, cell):
    assert cell["source"] == "".join(SOURCE["cells"][cell["index"]]["source"])
    assert expanded[cell["index"]] == cell["release"], (
        f"cell {cell['index']}\n--- nbgrader 0.9.6:\n{cell['release']}\n--- edgekit:\n{expanded[cell['index']]}")


@pytest.mark.parametrize("submission", ["solution", "stub"])
def test_expanded_cells_give_nbgraders_verdicts(expanded, submission):
    """Run the submission's cells with the expanded tests in one namespace, as autograde does."""
    answers = {c["index"]: c["source"] if submission == "solution" else c["release"] for c in RECORDED["cells"]}
    cells = [(f"cell {i}", expanded[i] if i in {c["index"] for c in TEST_CELLS} else answers[i])
             for i in sorted(answers)]
    errors = dict(run_cells(cells, fresh_namespace()))
    got = {f"test_{n}": 0.0 if errors[f"cell {c['index']}"] else 1.0 for n, c in enumerate(TEST_CELLS)}
    assert got == RECORDED["scores"][submission], {k: errors[f"cell {c['index']}"] for k, c in
                                                    zip(got, TEST_CELLS) if got[k] != RECORDED["scores"][submission][k]}


@pytest.mark.parametrize("job", json.loads((FIXTURES / "nbgrader-own.json").read_text()),
                         ids=lambda job: Path(job["notebook"]).name)
def test_nbgraders_own_autotest_notebooks_expand_as_nbgrader_expands_them(job, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = expand_notebook(job["cells"], namespace_executor(fresh_namespace()), job["templates"])
    assert got == job["release"], [(g, r) for g, r in zip(got, job["release"]) if g != r][:1]


def test_a_stub_fails_every_expanded_directive_it_passed_as_a_comment(expanded):
    stub = {c["index"]: c["release"] for c in RECORDED["cells"] if not c["grade"]}
    directives_only = [c for c in TEST_CELLS if all("AUTOTEST" in ln for ln in c["source"].splitlines())]
    assert len(directives_only) == 10
    for cell in directives_only:
        as_comment = dict(run_cells([("stub", stub[2]), ("stub2", stub[3]), ("t", cell["source"])], fresh_namespace()))
        as_nbgrader = dict(run_cells([("stub", stub[2]), ("stub2", stub[3]), ("t", expanded[cell["index"]])],
                                     fresh_namespace()))
        assert as_comment["t"] is None and as_nbgrader["t"] is not None, (cell["source"], as_nbgrader["t"])


def test_shared_repro_a_wrong_value_fails():
    """../nbgrader-repro/autotest_directive: source ``a = 5``, submission ``a = 6``: nbgrader gives 0."""
    ns = fresh_namespace()
    exec("a = 5", ns)
    test = expand("### AUTOTEST a", namespace_executor(ns), index=1)
    assert dict(run_cells([("sub", "a = 6"), ("t", test)], fresh_namespace()))["t"] is not None
    assert dict(run_cells([("sub", "a = 5"), ("t", test)], fresh_namespace()))["t"] is None
    assert dict(run_cells([("sub", "a = 5.0"), ("t", test)], fresh_namespace()))["t"] is not None  # type checked


def test_hashed_cells_hide_the_answer_and_are_reproducible(expanded):
    ns = fresh_namespace()
    exec("xs = [3, 1, 2]", ns)
    once = expand("### HASHED AUTOTEST xs", namespace_executor(ns), index=5)
    assert "[3, 1, 2]" not in once and "sha1(" in once
    assert expand("### HASHED AUTOTEST xs", namespace_executor(ns), index=5) == once
    assert expand("### HASHED AUTOTEST xs", namespace_executor(ns), index=6) != once  # salt from the index


def test_lines_before_a_directive_run_first_and_the_cell_leaves_the_namespace_run():
    ns = fresh_namespace()
    out = expand("k = 3\n### AUTOTEST k * 2\nafter = k + 1", namespace_executor(ns), index=0)
    assert 'assert str(k * 2) == """6"""' in out and out.splitlines()[0] == "k = 3"
    assert ns["after"] == 4 and ns["sha1"].__name__ == "openssl_sha1"


def test_cells_without_directives_are_not_run():
    cells = [{"cell_type": "code", "source": "raise SystemExit('must not run')", "metadata": {}}]
    assert expand_notebook(cells, namespace_executor(fresh_namespace())) == ["raise SystemExit('must not run')"]


def test_empty_snippets_only_the_first_is_dropped_as_in_nbgrader():
    ns = fresh_namespace()
    exec("n = 1\nx = 2", ns)
    assert (expand("### AUTOTEST n;; x", namespace_executor(ns), index=0)
            == expand("### AUTOTEST n; x", namespace_executor(ns), index=0))
    with pytest.raises(AutotestError, match="AUTOTEST ''"):  # nbgrader evaluates type() and stops
        expand("### AUTOTEST n;;; x", namespace_executor(ns), index=0)


def test_a_directive_outside_a_grade_cell_is_refused():
    with pytest.raises(AutotestError, match="not a grade cell"):
        expand("### AUTOTEST 1", namespace_executor(fresh_namespace()), index=3, grade=False)


def test_an_expression_the_solution_cannot_evaluate_names_the_directive():
    with pytest.raises(AutotestError, match=r"cell 7: AUTOTEST 'missing'.*NameError"):
        expand("### AUTOTEST missing", namespace_executor(fresh_namespace()), index=7)


class Point:
    pass


@pytest.mark.parametrize("value, shown", [
    (int, "int"), (np.ndarray, "numpy.ndarray"), (type(None), "NoneType"), (Point, f"{__name__}.Point"),
    ("it's", "it's"), ("'quoted'", "quoted"), ('a"b', 'a"b'), (5, "5"), (None, None),
])
def test_display_text_is_what_nbgrader_reads_from_the_kernel(value, shown):
    assert display_text(value) == shown


def test_display_text_agrees_with_ipython():
    pretty = pytest.importorskip("IPython.lib.pretty").pretty
    for value in (int, np.ndarray, Point, type(None), "it's", 'a"b', "x\ny", "[[0 1]\n [2 3]]", 5, 2.5, True,
                  1j, b"x'", [1, "a"], {"k": (1,)}):
        assert display_text(value) == pretty(value).strip('"').strip("'"), value


@pytest.mark.parametrize("template, values", [
    ("str({{snippet}})", {"snippet": "{{snippet}}"}), ("{{ snippet }}\n", {"snippet": "x\n"}),
    ("a{{missing}}b", {}), ("{{value}}", {"value": None}), ("x\r\ny", {}),
    ("{{ snippet|upper }}", {"snippet": "abc"}), ("{% if salt %}h{% endif %}", {"salt": "1"}),
])
def test_render_is_jinja2(template, values):
    jinja2 = pytest.importorskip("jinja2")
    want = jinja2.Environment(loader=jinja2.BaseLoader).from_string(template).render(**values)
    assert _render(template, **values) == want


def test_a_course_template_for_a_type_is_used():
    templates = {**DEFAULT_TEMPLATES, "templates": {**DEFAULT_TEMPLATES["templates"], "numpy.ndarray": [
        {"test": "{{snippet}}.shape", "fail": "shape of {{snippet}} is wrong"}]}}
    ns = fresh_namespace()
    exec("import numpy as np\ng = np.zeros((2, 3))", ns)
    out = expand("### AUTOTEST g", namespace_executor(ns), index=0, templates=templates)
    assert 'assert str(g.shape) == """(2, 3)""", """shape of g is wrong"""' in out


def test_templates_found_beside_the_notebook_first_then_in_the_course(tmp_path):
    course, notebooks = tmp_path, tmp_path / "source" / "ps1"
    notebooks.mkdir(parents=True)
    assert find_templates(notebooks, course) is None and load_templates(None) is DEFAULT_TEMPLATES
    (course / "autotests.yml").write_text("python3: {}\n")
    assert find_templates(notebooks, course) == course / "autotests.yml"
    (notebooks / "autotests.yml").write_text("python3: {}\n")
    assert find_templates(notebooks, course) == notebooks / "autotests.yml"


def test_a_course_autotests_yml_loads(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "autotests.yml"
    path.write_text(yaml.safe_dump({"python3": DEFAULT_TEMPLATES, "python": DEFAULT_TEMPLATES}))
    assert load_templates(path) == DEFAULT_TEMPLATES
    path.write_text("ir:\n  dispatch: x\n")
    with pytest.raises(AutotestError, match="no section for kernel 'python3'"):
        load_templates(path)
    path.write_text(yaml.safe_dump({"python3": {k: v for k, v in DEFAULT_TEMPLATES.items() if k != "check"}}))
    with pytest.raises(AutotestError, match="missing \\['check'\\]"):
        load_templates(path)


def test_without_pyyaml_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    (tmp_path / "autotests.yml").write_text("python3: {}\n")
    with pytest.raises(MissingExtraError, match="pip install pyyaml"):
        load_templates(tmp_path / "autotests.yml")
