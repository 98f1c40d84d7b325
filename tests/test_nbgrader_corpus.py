"""edgekit against nbgrader's recorded verdicts on the public corpus (tests/fixtures/nbgrader-corpus).

nbgrader is not needed here: each assignment folder holds ``nbgrader-verdicts.json``, what nbgrader
0.9.6 gave every test cell of every submission (recorded by ``benchmarks/nbgrader_fidelity.py
--record``). The agreement test grades the whole corpus with edgekit and compares cell by cell.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgekit.grading import grade_batch

CORPUS = Path(__file__).parent / "fixtures" / "nbgrader-corpus"
ASSIGNMENTS = sorted(p for p in CORPUS.iterdir() if (p / "source.ipynb").is_file())

# Share of test cells where edgekit gives nbgrader's points: measured on this corpus with the
# grader of commit 8eae159, 308/503 = 61.2%, rounded down. It only guards against regressions:
# raise it as the grader improves (issue 12's goal: 100% apart from disputed cells).
AGREEMENT_FLOOR = 0.61


def graded_cells(source: Path) -> dict[str, float]:
    """``{grade_id: points}`` of the autograded test cells: code, nbgrader ``grade``, not ``solution``."""
    cells = {}
    for c in json.loads(source.read_text(encoding="utf-8"))["cells"]:
        m = c.get("metadata", {}).get("nbgrader", {})
        if c["cell_type"] == "code" and m.get("grade") and not m.get("solution"):
            cells[str(m["grade_id"])] = float(m.get("points", 0))
    return cells


def test_the_corpus_is_there():
    assert len(ASSIGNMENTS) >= 30, f"expected the 31 corpus assignments in {CORPUS}, found {len(ASSIGNMENTS)}"
    assert (CORPUS / "README.md").is_file() and (CORPUS / "LICENSE-nbgrader").is_file()


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda p: p.name)
def test_recorded_verdicts_are_complete(assignment: Path):
    verdicts = json.loads((assignment / "nbgrader-verdicts.json").read_text(encoding="utf-8"))
    students = {p.stem for p in (assignment / "submissions").glob("*.ipynb")}
    assert students, f"{assignment.name} has no submissions"
    assert set(verdicts) == students, (f"{assignment.name}: verdicts for {sorted(verdicts)}, submissions "
                                       f"{sorted(students)}; re-record with benchmarks/nbgrader_fidelity.py --record")
    cells = graded_cells(assignment / "source.ipynb")
    assert cells, f"{assignment.name}/source.ipynb has no autograded test cell"
    for student, points in verdicts.items():
        assert set(points) == set(cells), f"{assignment.name}/{student}: verdicts for {sorted(points)}, cells {sorted(cells)}"
        for gid, p in points.items():
            assert isinstance(p, (int, float)) and 0 <= p <= cells[gid], f"{assignment.name}/{student}/{gid}: {p!r}"


def edgekit_points(record: dict) -> dict[str, float]:
    points: dict[str, float] = {}
    for t in record.get("tests", []):
        gid = t.get("question") or t["tags"][0]
        points[gid] = points.get(gid, 0.0) + float(t.get("score") or 0.0)
    return points


@pytest.mark.slow  # every submission of the corpus (208): minutes on 2 busy cores
def test_agreement_with_nbgrader_does_not_regress(tmp_path):
    rows = []
    for a in ASSIGNMENTS:
        subs = tmp_path / a.name / "submissions"
        for s in (a / "submissions").glob("*.ipynb"):
            (subs / s.stem).mkdir(parents=True)
            shutil.copyfile(s, subs / s.stem / "source.ipynb")
        result = grade_batch(a / "source.ipynb", subs, tmp_path / a.name / "out", jobs=2, progress=False)
        verdicts = json.loads((a / "nbgrader-verdicts.json").read_text(encoding="utf-8"))
        mine = {r["student"]: edgekit_points(r) for r in result.records}
        for student, cells in verdicts.items():
            for gid, want in cells.items():
                got = mine.get(student, {}).get(gid, 0.0)
                rows.append((f"{a.name}/{student}/{gid}", want, got, abs(want - got) < 1e-6))
    agree = sum(r[3] for r in rows)
    assert len(rows) > 400  # the whole corpus was compared, not a part of it
    differ = "\n".join(f"  {name}: nbgrader {want:g}, edgekit {got:g}" for name, want, got, ok in rows if not ok)
    assert agree / len(rows) >= AGREEMENT_FLOOR, (
        f"edgekit agrees with nbgrader on {agree}/{len(rows)} test cells ({agree / len(rows):.1%}), below the floor "
        f"{AGREEMENT_FLOOR:.0%} measured before; cells that differ:\n{differ}")
