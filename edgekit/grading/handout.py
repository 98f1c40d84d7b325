"""The student version of a lab: solutions stubbed, instructor cells and hidden tests removed, public checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .lab import Lab, LabError
from .notebook import HIDDEN, role, stub
from .selfcheck import public_checks


def release(lab: Lab, out_dir: str | Path) -> list[Path]:
    """Write the student version of ``lab`` into ``out_dir/<lab id>/``: the notebook, its public
    checks and its support files, in a folder of their own (two labs' files never collide).

    Solutions become stubs, instructor cells and hidden tests go, outputs are cleared. The
    output depends only on the lab's files, so releasing twice gives byte-identical files.
    """
    import nbformat

    if lab.id in ("", ".", "..") or Path(lab.id).name != lab.id or "\\" in lab.id:
        raise LabError(f"lab id {lab.id!r} cannot name its release folder: use letters, digits and dashes "
                       "(e.g. id = \"lab01-first-inference\" in lab.toml)")
    checks = public_checks(lab) if lab.format == "edgekit" else None  # fails early on a broken reference
    nb = copy.deepcopy(lab.notebook())
    cells = []
    for cell in nb.cells:
        kind, qid = role(cell)
        if kind == "instructor":
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if kind == "answer":
            title = lab.question(qid).title if lab.format == "edgekit" else qid
            cell.source = stub(cell.source, f"{lab.label(qid)}: {title}" if lab.format == "edgekit" else
                               f"{qid}: write your answer here")
        elif kind == "test":
            cell.source = HIDDEN.sub("", cell.source)
        cells.append(cell)
    nb.cells = cells
    nb.metadata["edgekit"] = {"lab": lab.id, "release": 1}
    out = Path(out_dir) / lab.id
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{lab.id}.ipynb"
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    written = [path]
    for rel in lab.files:  # public support files (data, a helper module) sit next to the notebook
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((lab.root / rel).read_bytes())
        written.append(dest)
    if checks is not None:
        cpath = out / f"{lab.id}.checks.json"
        cpath.write_text(json.dumps(checks, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        written.append(cpath)
    return written
