"""edgekit against nbgrader's recorded verdicts on the public corpus (tests/fixtures/nbgrader-corpus).

nbgrader is not needed here: each assignment folder holds ``nbgrader-verdicts.json``, what nbgrader
0.9.6 gave every test cell of every submission (recorded by ``benchmarks/nbgrader_fidelity.py
--record``). The agreement test grades the whole corpus with edgekit and compares cell by cell.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import grade_forked

CORPUS = Path(__file__).parent / "fixtures" / "nbgrader-corpus"
ASSIGNMENTS = sorted(p for p in CORPUS.iterdir() if (p / "source.ipynb").is_file())

# Issue 12's goal, measured here at 467/467 cells not disputed (benchmarks/nbgrader_fidelity.py): every
# test cell that is not disputed gets nbgrader's points; disputed cells (the two runs of a test cell
# disagree, see edgekit/grading/replay.py) stay under 2% of the cells of honest submissions (5/327
# when measured: an Axes the student draws on, a comparison by the student's own __eq__); a cheat's
# cell is disputed or failed, never given the points nbgrader is fooled into giving.
AGREEMENT_FLOOR = 1.0
DISPUTED_CEILING = 0.02


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


def edgekit_points(record: dict) -> dict[str, tuple[float, bool]]:
    """``{grade_id: (points, disputed)}`` of a record."""
    points: dict[str, tuple[float, bool]] = {}
    for t in record.get("tests", []):
        gid = t.get("question") or t["tags"][0]
        pts, disputed = points.get(gid, (0.0, False))
        points[gid] = (pts + float(t.get("score") or 0.0),
                       disputed or bool(t.get("disputed", (t.get("extra_data") or {}).get("disputed"))))
    return points


@pytest.mark.slow  # every submission of the corpus (208): minutes on 2 cores
def test_agreement_with_nbgrader_apart_from_disputed_cells(tmp_path):
    rows = []
    for a in ASSIGNMENTS:
        subs = {s.stem: s for s in sorted((a / "submissions").glob("*.ipynb"))}
        records = grade_forked(a / "source.ipynb", subs, tmp_path / a.name / "out")
        verdicts = json.loads((a / "nbgrader-verdicts.json").read_text(encoding="utf-8"))
        for student, cells in verdicts.items():
            mine = edgekit_points(records[student])
            for gid, want in cells.items():
                got, disputed = mine.get(gid, (0.0, False))
                rows.append((f"{a.name}/{student}/{gid}", want, got, disputed, abs(want - got) < 1e-6))
    assert len(rows) > 400  # the whole corpus was compared, not a part of it
    clear = [r for r in rows if not r[3]]
    differ = "\n".join(f"  {name}: nbgrader {want:g}, edgekit {got:g}" for name, want, got, _, ok in clear if not ok)
    agree = sum(r[4] for r in clear)
    assert agree / len(clear) >= AGREEMENT_FLOOR, (
        f"edgekit agrees with nbgrader on {agree}/{len(clear)} test cells that are not disputed "
        f"({agree / len(clear):.1%}), below {AGREEMENT_FLOOR:.0%}; cells that differ:\n{differ}")
    honest = [r for r in rows if "/cheat-" not in r[0]]
    disputed = [r[0] for r in honest if r[3]]
    assert len(disputed) / len(honest) < DISPUTED_CEILING, (
        f"{len(disputed)}/{len(honest)} cells of honest submissions disputed, over {DISPUTED_CEILING:.0%}: {disputed}")
    fooled = [r[0] for r in rows if r[3] and r[2] > 0]  # the strict policy: a disputed cell earns nothing
    assert not fooled, f"disputed cells given points: {fooled}"
