"""Runs every released notebook in this Python's Jupyter kernel, as a student's Run All would, and
prints one JSON line: ``{lab id: {"cells": n, "errors": [[cell, ename, evalue], ...]}}``.

Usage (tests/test_student_install.py, with the venv's python):  python run_notebooks.py NOTEBOOKS WORK
Each lab folder is copied to WORK first (the notebooks write files beside themselves).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbclient
import nbformat


def run(folder: Path) -> dict:
    nb = nbformat.read(folder / f"{folder.name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [[i, o.get("ename"), o.get("evalue", "")[:300]] for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return {"cells": sum(c.get("execution_count") is not None for c in code), "code_cells": len(code),
            "errors": errors}


def main() -> None:
    notebooks, work = Path(sys.argv[1]), Path(sys.argv[2])
    result = {}
    for src in sorted(p for p in notebooks.iterdir() if (p / f"{p.name}.ipynb").is_file()):
        folder = work / src.name
        shutil.copytree(src, folder)
        try:
            result[src.name] = run(folder)
        except Exception as exc:  # noqa: BLE001 - a kernel that dies is a result too
            result[src.name] = {"cells": 0, "code_cells": 0, "errors": [[-1, type(exc).__name__, str(exc)[:300]]]}
        print(f"{src.name}: {result[src.name]['cells']} cells, {len(result[src.name]['errors'])} errors",
              file=sys.stderr, flush=True)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
