"""edgekit.grading.notebook and lab: roles, stubs, deterministic release, manifests."""

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from edgekit.grading import LabError, load_lab, release
from edgekit.grading.notebook import read_notebook, role, stub

DEMO = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
NBGRADER = Path(__file__).parent / "fixtures" / "nbgrader" / "ps1.ipynb"


def test_stub_keeps_code_outside_the_markers_and_names_the_question():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    assert stub(src, "Lab 1, question 2: f") == "def f(x):\n    y = 1\n    raise NotImplementedError(\"Lab 1, question 2: f\")\n"
    assert stub("x = 42\n", "Lab 1, question 1: x") == 'raise NotImplementedError("Lab 1, question 1: x")\n'


def test_release_is_deterministic_and_removes_every_secret(tmp_path):
    a = release(DEMO, tmp_path / "a")
    b = release(DEMO, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    text = a[0].read_text()
    nb = nbformat.reads(text, as_version=4)
    assert "BEGIN SOLUTION" not in text and "np.exp(z)" not in text  # solutions gone
    assert "instructor-notes" not in [c.get("id") for c in nb.cells]  # instructor cells gone
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert 'NotImplementedError(\\"Lab 0, question 1: a numerically stable softmax\\")' in text
    assert nb.metadata["edgekit"]["lab"] == "lab00-demo"
    checks = a[1].read_text()
    assert "huge logits" not in checks and "three logits" in checks  # hidden cases not shipped


def test_release_of_an_nbgrader_notebook_drops_hidden_tests(tmp_path):
    (out,) = release(NBGRADER, tmp_path)
    text = out.read_text()
    assert "squares(0)" not in text and "HIDDEN" not in text and "assert squares(3) == [1, 4, 9]" in text
    assert "return [i * i" not in text


def test_roles_from_edgekit_and_nbgrader_metadata():
    nb = read_notebook(NBGRADER)
    assert [role(c) for c in nb.cells] == [("markdown", None), ("context", None), ("answer", "squares"),
                                           ("test", "test_squares"), ("answer", "mean_of"), ("test", "test_mean")]
    lab = load_lab(NBGRADER)
    assert lab.format == "nbgrader" and [(q.id, q.points) for q in lab.questions] == [("test_squares", 2), ("test_mean", 1)]



def _code(source, **edgekit):
    return nbformat.v4.new_code_cell(source, metadata={"edgekit": edgekit} if edgekit else {})


@pytest.mark.parametrize("source, meta, want", [
    ("# edgekit: answer q1\ndef f(): ...", {}, ("answer", "q1")),  # the comment alone
    ("#edgekit:   check   q2  \ncheck('q2')", {}, ("check", "q2")),
    ("# edgekit: no-grade\nplot()", {}, ("no-grade", None)),
    ("  # edgekit: instructor", {}, ("instructor", None)),
    ("def f(): ...", {"role": "answer", "question": "q1"}, ("answer", "q1")),  # the metadata alone
    ("# edgekit: answer q1\ndef f(): ...", {"role": "answer", "question": "q1"}, ("answer", "q1")),  # both, agreeing
    ("x = 1\n# edgekit: answer q1", {}, ("context", None)),  # only the first line counts
    ("# an edgekit: note", {}, ("context", None)),
])
def test_roles_from_a_first_line_comment_or_metadata(source, meta, want):
    assert role(_code(source, **meta)) == want


@pytest.mark.parametrize("source, meta, match", [
    ("# edgekit: answer q2\ndef f(): ...", {"role": "answer", "question": "q1"}, "first line says '# edgekit: answer q2' but"),
    ("# edgekit: check q1\ncheck('q1')", {"role": "answer", "question": "q1"}, "metadata says role 'answer'"),
    ("# edgekit: anwser q1", {}, "is not a cell role; expected one of '# edgekit: answer q1'"),
    ("# edgekit: answer", {}, "is not a cell role"),
    ("# edgekit: no-grade q1", {}, "is not a cell role"),
])
def test_a_role_comment_that_disagrees_with_the_metadata_or_is_no_role_is_an_error(source, meta, match):
    with pytest.raises(LabError, match=re.escape(match)):
        role(_code(source, **meta))
    # in a submission the same cell costs nothing: the metadata wins, a line that is no role is ignored
    want = (meta["role"], meta["question"]) if meta else ("context", None)
    assert role(_code(source, **meta), trusted=False) == want


def test_a_stub_keeps_the_role_line():
    assert stub("# edgekit: answer q1\nx = 42\n", "L") == '# edgekit: answer q1\nraise NotImplementedError("L")\n'
    src = "# edgekit: answer q2\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert stub(src, "L") == '# edgekit: answer q2\ndef f():\n    raise NotImplementedError("L")\n'


def test_every_lab_cell_with_a_role_shows_it_in_its_first_line():
    """labs/*/lab.ipynb and the demo lab: the role is readable in the notebook and in diffs, not only in the metadata."""
    labs = sorted((Path(__file__).parents[1] / "labs").glob("*/lab.ipynb")) + [DEMO / "lab.ipynb"]
    missing = [(p.parent.name, c.get("id")) for p in labs for c in read_notebook(p).cells
               if c.cell_type == "code" and (c.metadata.get("edgekit") or {}).get("role")
               and not c.source.startswith("# edgekit: ")]
    assert labs and not missing, missing


@pytest.mark.parametrize("toml, match", [
    ('title = "x"\nquestions = []', "missing key"),
    ('id = "x"\ntitle = "x"\n[[questions]]\nid = "q1"', "needs 'id' and 'points'"),
    ('id = "x"\ntitle = "x"\n[limits]\ncpu = 1\n[[questions]]\nid = "q1"\npoints = 1', "unknown limit"),
    ('id = "x" title', "not valid TOML"),
])
def test_lab_manifest_errors_say_what_is_wrong(tmp_path, toml, match):
    (tmp_path / "lab.toml").write_text(toml)
    (tmp_path / "lab.ipynb").write_text((DEMO / "lab.ipynb").read_text())
    with pytest.raises(LabError, match=match):
        load_lab(tmp_path)


def test_tests_file_naming_an_unknown_question_is_refused(tmp_path):
    for f in ("lab.toml", "lab.ipynb"):
        (tmp_path / f).write_text((DEMO / f).read_text())
    (tmp_path / "tests.py").write_text("from edgekit.grading import case, call\ncase('q9', 'x', call('f'))\n")
    with pytest.raises(LabError, match="question 'q9'"):
        load_lab(tmp_path).cases()


def test_not_a_lab_and_not_a_notebook(tmp_path):
    with pytest.raises(LabError, match="lab.toml"):
        load_lab(tmp_path)
    bad = tmp_path / "x.ipynb"
    bad.write_text("{ not json")
    with pytest.raises(LabError, match="not a readable notebook"):
        read_notebook(bad)


def test_manual_questions_need_no_tests_and_stay_out_of_the_score(tmp_path):
    for f in ("lab.ipynb", "tests.py"):
        (tmp_path / f).write_text((DEMO / f).read_text())
    toml = (DEMO / "lab.toml").read_text() + '\n[[questions]]\nid = "report"\ntitle = "report"\npoints = 4\nmanual = true\n'
    (tmp_path / "lab.toml").write_text(toml)
    lab = load_lab(tmp_path)
    assert lab.max_score == 6.0 and [q.id for q in lab.auto_questions] == ["q1", "q2", "q3"]
    assert len(lab.cases()) == 9
    from edgekit.grading.results import grades_csv

    row = grades_csv([{"student": "a", "score": 6, "max_score": 6, "questions": {"q1": {"score": 2}}}], ["q1", "report"])
    assert row.splitlines()[1] == "a,6,6,2,,", row


def test_two_labs_with_a_support_file_of_the_same_name_release_side_by_side(tmp_path):
    """Each lab gets a folder of its own under --out: one lab's data.json cannot replace another's."""
    for lab_id, data in (("lab-a", '{"lab": "a"}'), ("lab-b", '{"lab": "b"}')):
        shutil.copytree(DEMO, tmp_path / lab_id)
        toml = (tmp_path / lab_id / "lab.toml").read_text().replace('id = "lab00-demo"', f'id = "{lab_id}"')
        (tmp_path / lab_id / "lab.toml").write_text(f'files = ["data.json"]\n{toml}')
        (tmp_path / lab_id / "data.json").write_text(data)
    out = tmp_path / "notebooks"
    written = release(tmp_path / "lab-a", out) + release(tmp_path / "lab-b", out)
    assert (out / "lab-a" / "data.json").read_text() == '{"lab": "a"}'
    assert (out / "lab-b" / "data.json").read_text() == '{"lab": "b"}'
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(
        f"{i}/{n}" for i in ("lab-a", "lab-b") for n in (f"{i}.ipynb", f"{i}.checks.json", "data.json"))


def test_a_lab_id_that_is_not_a_folder_name_is_refused(tmp_path):
    shutil.copytree(DEMO, tmp_path / "lab")
    toml = tmp_path / "lab" / "lab.toml"
    toml.write_text(toml.read_text().replace('id = "lab00-demo"', 'id = "../escape"'))
    with pytest.raises(LabError, match="cannot name its release folder"):
        release(tmp_path / "lab", tmp_path / "out")
    assert not (tmp_path / "escape").exists()
