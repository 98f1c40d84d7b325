"""Every lab in labs/: the released notebook is fresh, the grader ranks reference > partial > stub,
and the student notebook runs top to bottom in a real Jupyter kernel (only the stubs may raise).

A lab's partially correct submission is ``labs/<lab>/fixtures/partial.json``: ``{question: answer
cell source}`` for some questions, applied to the released notebook.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from edgekit.grading import grade_batch, load_lab, release
from edgekit.grading.notebook import read_notebook, role

ROOT = Path(__file__).parents[1]
LABS = sorted(p for p in (ROOT / "labs").iterdir() if (p / "lab.toml").is_file()) if (ROOT / "labs").is_dir() else []
NOTEBOOKS = ROOT / "notebooks"

pytestmark = pytest.mark.skipif(not LABS, reason="no labs in labs/ yet")


def _ids(paths):
    return [p.name for p in paths]


@pytest.mark.parametrize("lab_dir", LABS, ids=_ids(LABS))
def test_released_notebook_is_committed_and_fresh(lab_dir, tmp_path):
    lab = load_lab(lab_dir)
    fix = f"run  edgekit lab release {lab_dir.relative_to(ROOT)} --out notebooks"
    released = release(lab, tmp_path)
    for fresh in released:
        committed = NOTEBOOKS / fresh.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} missing: {fix}"
        assert committed.read_bytes() == fresh.read_bytes(), f"{committed} differs from a fresh release: {fix}"
    folder = NOTEBOOKS / lab.id  # and nothing else in the lab's folder (a file left from an older release)
    extra = {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and not
             {"__pycache__", ".ipynb_checkpoints"} & set(p.parts)} - {f.relative_to(tmp_path / lab.id) for f in released}
    assert not extra, f"{folder} holds files its release does not write: {sorted(map(str, extra))}"


@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    """Grade reference, stub and partial submissions of every lab (one batch per lab)."""
    import nbformat

    out = {}
    for lab_dir in LABS:
        lab = load_lab(lab_dir)
        root = tmp_path_factory.mktemp(lab.id)
        released = NOTEBOOKS / lab.id / f"{lab.id}.ipynb"
        partial = json.loads((lab_dir / "fixtures" / "partial.json").read_text())
        for student in ("reference", "stub", "partial"):
            (root / "subs" / student).mkdir(parents=True)
        nbformat.write(read_notebook(lab.notebook_path), root / "subs" / "reference" / f"{lab.id}.ipynb")
        (root / "subs" / "stub" / f"{lab.id}.ipynb").write_bytes(released.read_bytes())
        nb = read_notebook(released)
        for cell in nb.cells:
            kind, qid = role(cell)
            if kind == "answer" and qid in partial:
                cell.source = partial[qid]
        nbformat.write(nb, root / "subs" / "partial" / f"{lab.id}.ipynb")
        res = grade_batch(lab_dir, root / "subs", root / "out", jobs=2, progress=False)
        out[lab.id] = (lab, {r["student"]: r for r in res.records})
    return out


@pytest.mark.parametrize("lab_dir", LABS, ids=_ids(LABS))
def test_reference_full_marks_stub_zero_partial_between(lab_dir, grades):
    lab, records = grades[load_lab(lab_dir).id]
    failed = [t["name"] + ": " + t["output"] for t in records["reference"]["tests"] if t["status"] != "passed"]
    assert records["reference"]["score"] == lab.max_score, failed + records["reference"]["notes"]
    assert records["stub"]["score"] == 0, [t["name"] for t in records["stub"]["tests"] if t["status"] == "passed"]
    assert records["stub"]["status"] == "graded", records["stub"]["notes"]
    assert 0 < records["partial"]["score"] < lab.max_score, records["partial"]["questions"]


@pytest.mark.parametrize("lab_dir", LABS, ids=_ids(LABS))
def test_student_notebook_runs_in_a_real_kernel(lab_dir, tmp_path):
    pytest.importorskip("nbclient", reason="the lab extra (nbclient, ipykernel) is not installed")
    from student.run_notebooks import run  # the runner of the offline student-install check (tests/student/)

    lab = load_lab(lab_dir)
    folder = tmp_path / lab.id  # the released folder, as a student downloads it: notebook, checks, support files
    shutil.copytree(NOTEBOOKS / lab.id, folder)
    errors = run(folder)["errors"]
    unexpected = [e for e in errors if e[1] != "NotImplementedError"]
    assert not unexpected, unexpected


DTYPES = re.compile(r"\b(?:float16|float32|float64|u?int8|u?int16|u?int32|u?int64|bool_)\b")


def question_texts(lab_dir) -> dict[str, str]:
    """{question: the markdown from its "Question" heading to its answer cell} of a lab's notebook."""
    texts, buf = {}, None
    for cell in read_notebook(lab_dir / "lab.ipynb").cells:
        if cell.cell_type == "markdown":
            if re.search(r"^#+\s*Question", cell.source, re.MULTILINE):
                buf = [cell.source]
            elif buf is not None:
                buf.append(cell.source)
        elif buf is not None and cell.get("metadata", {}).get("edgekit", {}).get("role") == "answer":
            q = cell.metadata["edgekit"]["question"]
            texts[q], buf = texts.get(q, "") + "\n".join(buf), None
    return texts


def returns_a_dtype(text: str) -> list[str]:
    """Sentences of a question that say what dtype the answer returns: a dtype and "return" together."""
    sentences = re.split(r"(?<=\.)\s+|\n\s*\n", text)
    return [" ".join(s.split()) for s in sentences if DTYPES.search(s) and re.search(r"\breturn", s)]


def test_question_texts_are_found():
    texts = question_texts(ROOT / "labs" / "lab01-first-inference")
    assert "returns a `float32` array" in " ".join(returns_a_dtype(texts["q1"])), texts.get("q1", "")[:300]
    assert returns_a_dtype("Write f(x). It returns the mean.") == []


@pytest.mark.parametrize("lab_dir", LABS, ids=_ids(LABS))
def test_a_question_that_names_the_returned_dtype_has_a_public_dtype_case(lab_dir):
    """The lab-format rule (labs/README.md): what a question asks to return, a public case checks,
    with close(dtype=True) or equal(dtype=True); else a uint8 array or a list passes check() and
    loses points in grading."""
    lab = load_lab(lab_dir)
    public = [c for c in lab.cases() if c.public and getattr(c.compare, "dtype", False)]
    missing = {q: said for q, text in question_texts(lab_dir).items()
               if (said := returns_a_dtype(text)) and not any(c.question == q for c in public)}
    assert not missing, ("expected a public case with dtype=True for each question that names the dtype it "
                         f"returns; none for: {missing}")
