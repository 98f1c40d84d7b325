"""End to end: release -> self-check -> grade, from the CLI; exports; resume; dask; nbgrader interop."""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from edgekit.cli.main import main as cli
from edgekit.grading import grade_batch, release
from edgekit.grading.notebook import role
from edgekit.grading.results import HIDDEN_FAILED

DEMO = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
NBGRADER = Path(__file__).parent / "fixtures" / "nbgrader" / "ps1.ipynb"
PARTIAL_Q1 = "def softmax(logits):\n    e = np.exp(np.asarray(logits, float))\n    return e / e.sum(axis=-1, keepdims=True)\n"


def _submissions(root: Path, released: Path) -> Path:
    subs = root / "subs"
    src = nbformat.read(DEMO / "lab.ipynb", as_version=4)
    answers = {role(c)[1]: c.source for c in src.cells if role(c)[0] == "answer"}
    for student, edit in {"ref": answers, "stub": {}, "partial": {"q1": PARTIAL_Q1, "q3": answers["q3"]}}.items():
        nb = nbformat.read(released, as_version=4)
        for c in nb.cells:
            kind, qid = role(c)
            if kind == "answer" and qid in edit:
                c.source = edit[qid]
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "lab00-demo.ipynb")
    (subs / "empty").mkdir()
    return subs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grade")
    assert cli(["lab", "release", str(DEMO), "--out", str(root / "rel")]) == 0
    subs = _submissions(root, root / "rel" / "lab00-demo" / "lab00-demo.ipynb")
    assert cli(["grade", str(DEMO), str(subs), "--out", str(root / "out"), "--jobs", "2"]) == 0
    return root


def test_reference_full_marks_stub_zero_partial_between(graded):
    rows = {r["student"]: r for r in csv.DictReader((graded / "out" / "grades.csv").open())}
    assert list(rows["ref"]) == ["student", "score", "max_score", "q1", "q2", "q3", "status"]
    got = {s: float(r["score"]) for s, r in rows.items()}
    # partial: q1 passes 2 of 3 cases by weight (the overflow case fails: 1 of 4 weight units), q3 right
    assert got == {"ref": 6.0, "stub": 0.0, "partial": 1.5 + 2.0, "empty": 0.0}, got
    assert rows["empty"]["status"] == "missing" and rows["ref"]["status"] == "graded"


def test_gradescope_results_json(graded):
    res = json.loads((graded / "out" / "partial" / "results.json").read_text())
    assert {"score", "execution_time", "output", "tests", "visibility"} <= res.keys()
    t = {x["name"]: x for x in res["tests"]}
    assert set(t["q1: three logits"]) >= {"name", "score", "max_score", "status", "output", "visibility"}
    assert t["q1: three logits"]["visibility"] == "visible"  # public case
    bad = t["q1: huge logits do not overflow"]
    assert bad["status"] == "failed" and bad["visibility"] == "after_due_date"
    assert bad["output"] == HIDDEN_FAILED, bad["output"]  # the default feedback policy: a hidden case's data stays hidden
    full = json.loads((graded / "out" / ".edgekit" / "records" / "partial.json").read_text())  # the instructor's copy
    mine = next(x for x in full["tests"] if x["name"] == bad["name"])
    assert "got nan, expected 0.0900306" in mine["output"], mine["output"]  # the numbers, not just "failed"
    assert res["score"] == sum(x["score"] for x in res["tests"]) == 3.5
    assert res["extra_data"]["isolation"]["level"] in ("root", "userns", "rlimits-only")


def test_stub_feedback_names_the_question(graded):
    res = json.loads((graded / "out" / "stub" / "results.json").read_text())
    assert all(x["status"] == "failed" for x in res["tests"])
    assert "NotImplementedError: Lab 0, question 2" in res["tests"][3]["output"]
    html = (graded / "out" / "stub" / "feedback.html").read_text()
    assert "Score: 0 / 6" in html and "Lab 0, question 2" in html


def test_student_self_check_from_the_shell(graded, capsys):
    rel = graded / "rel" / "lab00-demo" / "lab00-demo.ipynb"
    assert cli(["check", str(rel)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  q1: three logits" in out and "0/3 checks passed" in out
    mine = graded / "rel" / "lab00-demo" / "mine.ipynb"
    shutil.copy(graded / "subs" / "partial" / "lab00-demo.ipynb", mine)
    assert cli(["check", str(mine), "q1"]) == 0
    assert "PASS  q1: three logits" in capsys.readouterr().out


def test_self_check_inside_a_notebook_namespace(graded, capsys, monkeypatch):
    from edgekit.grading import checker

    monkeypatch.chdir(graded / "rel")  # a course folder: the checks are found in its lab00-demo/
    import numpy as np

    check = checker("lab00-demo")

    def top_k(probs, k):
        return [int(i) for i in np.argsort(probs)[::-1][:k]]

    check("q3", namespace={"top_k": top_k})
    assert "1/1 public checks passed" in capsys.readouterr().out
    check("q3", namespace={})
    out = capsys.readouterr().out
    assert "top_k is not defined in your notebook" in out and "0/1 public checks passed" in out, out


def test_rerun_grades_nothing_unchanged_and_force_regrades(graded):
    subs, out = graded / "subs", graded / "out"
    before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    res = grade_batch(DEMO, subs, out, jobs=2, progress=False)
    assert res.graded == [] and sorted(res.skipped) == ["partial", "ref", "stub"], (res.graded, res.skipped)
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}["ref"] == before["ref"]
    # a changed submission is regraded, alone
    nb = nbformat.read(subs / "stub" / "lab00-demo.ipynb", as_version=4)
    nbformat.write(nb, subs / "stub" / "lab00-demo.ipynb")  # same content, maybe different bytes
    (subs / "stub" / "lab00-demo.ipynb").write_text((subs / "partial" / "lab00-demo.ipynb").read_text())
    res = grade_batch(DEMO, subs, out, jobs=2, progress=False)
    assert res.graded == ["stub"] and res.scores["stub"] == 3.5, (res.graded, res.scores)


def test_nbgrader_source_notebooks_grade_too(tmp_path):
    (rel,) = release(NBGRADER, tmp_path / "rel")
    subs = tmp_path / "subs"
    for student, nb_path in {"ref": NBGRADER, "stub": rel}.items():
        (subs / student).mkdir(parents=True)
        shutil.copy(nb_path, subs / student / "ps1.ipynb")
    wrong = nbformat.read(NBGRADER, as_version=4)
    wrong.cells[2].source = "def squares(n):\n    return [i * i for i in range(1, n + 1)] or [0]"  # fails a hidden test
    (subs / "hidden").mkdir()
    nbformat.write(wrong, subs / "hidden" / "ps1.ipynb")
    res = grade_batch(NBGRADER, subs, tmp_path / "out", jobs=2, progress=False)
    assert res.scores == {"ref": 3.0, "stub": 0.0, "hidden": 1.0}, res.scores
    # students self-check an nbgrader notebook with its visible test cells
    from edgekit.grading import check_notebook

    assert [r.passed for r in check_notebook(rel)] == [False, False]
    assert [r.passed for r in check_notebook(subs / "hidden" / "ps1.ipynb")] == [False, True]


def test_grading_on_a_dask_local_cluster_gives_the_same_grades(graded, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dist extra is not installed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        res = grade_batch(DEMO, graded / "subs", tmp_path / "out", scheduler=cluster.scheduler_address, progress=False)
    local = {r["student"]: float(r["score"]) for r in csv.DictReader((graded / "out" / "grades.csv").open())}
    assert res.scores == local, (res.scores, local)
    assert json.loads((tmp_path / "out" / "ref" / "results.json").read_text())["score"] == 6.0


def test_nbgrader_state_flows_between_cells_as_in_one_kernel(tmp_path):
    """Context cells may call the student's function; test cells may use earlier test cells' names."""
    state = NBGRADER.with_name("state.ipynb")
    (rel,) = release(state, tmp_path / "rel")
    subs = tmp_path / "subs"
    for student, nb_path in {"ref": state, "stub": rel}.items():
        (subs / student).mkdir(parents=True)
        shutil.copy(nb_path, subs / student / "state.ipynb")
    res = grade_batch(state, subs, tmp_path / "out", jobs=1, progress=False)
    assert res.scores == {"ref": 3.0, "stub": 0.0}, [(r["student"], [t["output"] for t in r["tests"]]) for r in res.records]
