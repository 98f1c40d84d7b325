"""The instructor's reference: run the solution notebook and compute the expected value of every case.

Runs only in trusted processes (the grader's coordinator, ``edgekit lab release``), never in a
process that also runs student code. Expected values are cached next to the grades, keyed by the
lab's fingerprint, so a grading batch runs the reference once.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

from . import wire
from .lab import Lab, LabError
from .notebook import role
from .kernel import Kernel


@contextlib.contextmanager
def lab_workdir(lab: Lab):
    """A temporary working directory holding the lab's public files, as students get them."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="edgekit-ref-") as tmp:
        for rel in lab.files:
            dest = Path(tmp) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab.root / rel, dest)
        os.chdir(tmp)
        sys.path.insert(0, tmp)  # as in Jupyter: support modules import from the notebook's folder
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)
            sys.path.remove(tmp)
            # support modules imported from here must not outlive the folder (a later run re-imports them)
            for name, module in list(sys.modules.items()):
                if str(getattr(module, "__file__", "") or "").startswith(tmp):
                    del sys.modules[name]


def reference_namespace(lab: Lab) -> types.SimpleNamespace:
    """Execute the instructor notebook (solutions included) and return its globals as attributes."""
    nb = lab.notebook()
    cells = [(f"cell {i + 1}", c.source) for i, c in enumerate(nb.cells)
             if role(c)[0] in ("context", "answer")]
    kernel = Kernel(execution="autograde")  # as the student's process runs it: magics, one namespace, seeded
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the reference's prints are not the instructor's output
            errors = [r for r in (kernel.run(label, source) for label, source in cells) if not r.ok]
    finally:
        os.environ.pop("NBGRADER_EXECUTION", None)  # set for the notebook's sake, not this process's
    if errors:
        raise LabError(f"lab {lab.id}: the reference solution fails in {errors[0].label}: {errors[0].error}")
    ns = kernel.ns
    return types.SimpleNamespace(**{k: v for k, v in ns.items() if not k.startswith("__")})


AUTOTEST = "__autotest__"  # key of the expanded nbgrader test cells in the expected-values file


def autotest_sources(lab: Lab) -> dict[str, str]:
    """``{cell index: source}`` of an nbgrader notebook's test cells whose ``### AUTOTEST`` lines
    were expanded against the solution, as ``nbgrader generate_assignment`` does (empty if none)."""
    from .autotest import expand_notebook, find_templates, has_directive, load_templates, namespace_executor

    nb = lab.notebook()
    if not any(c.cell_type == "code" and has_directive(c.source) for c in nb.cells):
        return {}
    with lab_workdir(lab):
        sources = expand_notebook(nb.cells, namespace_executor({"__name__": "__main__"}),
                                  load_templates(find_templates(lab.root)))
    return {str(i): new for i, (c, new) in enumerate(zip(nb.cells, sources)) if new != c.source}


def expected_values(lab: Lab, cases: list, public_only: bool = False) -> dict[str, Any]:
    """``{case key: encoded expected value}`` from the reference solution (JSON-ready)."""
    from .notebook import TestCell

    out: dict[str, Any] = {}
    todo = [c for c in cases if (c.public or not public_only)]
    if all(isinstance(c.target, TestCell) for c in todo):
        return {c.key: wire.encode(True) for c in todo} | ({} if public_only else {AUTOTEST: autotest_sources(lab)})
    with lab_workdir(lab):
        ns = reference_namespace(lab)
        for c in todo:
            if isinstance(c.target, TestCell):
                out[c.key] = wire.encode(True)
                continue
            try:
                value = c.target(ns)
                out[c.key] = wire.encode(value)
            except wire.Unsendable as exc:
                raise LabError(f"lab {lab.id}, case {c.key!r}: the reference returns {exc.type_name}, "
                               "not data; make the case return numbers, arrays, strings or lists") from None
            except Exception as exc:
                raise LabError(f"lab {lab.id}, case {c.key!r}: the reference solution raised "
                               f"{type(exc).__name__}: {exc}") from None
    return out
