"""Students check their own answers: ``check("q1")`` in the notebook, ``edgekit check`` in a shell.

The release writes ``<lab>.checks.json`` next to the student notebook: the public cases with the
expected values computed from the reference solution. Checking needs no grader, no isolation and
no network — it runs the student's own functions in their own kernel and prints the numbers.

    check = ek.checker("lab01-first-inference")   # first cell of a released notebook
    check("q2")                                    # after answering question 2
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import cases as _cases
from . import wire
from .lab import Lab, LabError

COMPARES = {"close": _cases.close, "equal": _cases.equal, "within": _cases.within}


def public_checks(lab: Lab) -> dict:
    """The JSON document a release ships: public cases, their comparisons and expected values."""
    from .reference import expected_values

    all_cases = lab.cases()
    public = [c for c in all_cases if c.public]
    expected = expected_values(lab, public, public_only=True)
    out = []
    for c in public:
        kind = type(c.compare).__name__
        if kind not in COMPARES:
            raise LabError(f"public case {c.key!r} uses a custom comparison; public cases must use "
                           f"one of {', '.join(COMPARES)}")
        t = c.target
        target = ({"call": t.name, "args": _cases.to_wire(t.args), "kwargs": _cases.to_wire(t.kwargs)}
                  if isinstance(t, _cases.Call) else {"get": t.name})
        out.append({"question": c.question, "name": c.name, "target": target,
                    "compare": {"kind": kind, **asdict(c.compare)}, "expected": expected[c.key]})
    return {"lab": lab.id, "format": 1, "cases": out,
            "questions": {q.id: {"label": lab.label(q.id), "title": q.title, "points": q.points,
                                 "public_cases": sum(c.question == q.id for c in public),
                                 "hidden_cases": sum(c.question == q.id and not c.public for c in all_cases)}
                          for q in lab.questions}}


@dataclass
class CheckResult:
    question: str
    name: str
    passed: bool
    message: str

    def to_dict(self) -> dict:
        return {"schema": "edgekit.grading.check/1", **asdict(self)}

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.question}: {self.name}" + (
            "" if self.passed else f"\n      {self.message}")


def find_checks(lab_id: str, near: Path | None = None) -> Path:
    """Locate ``<lab_id>.checks.json``: in ``near`` (the notebook's folder), the working directory
    (Jupyter runs a notebook in its folder), or a lab folder ``<lab_id>/`` in it, in ``notebooks/``
    or beside it, where ``edgekit lab release`` puts it."""
    name = f"{lab_id}.checks.json"
    cwd = Path.cwd()
    dirs = [d for d in (near, cwd, cwd / lab_id, cwd / "notebooks" / lab_id, cwd.parent / lab_id) if d]
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise LabError(f"no public checks for lab {lab_id!r}: expected {name} next to the notebook "
                   f"(looked in {', '.join(str(d) for d in dirs)}); copy it from the course's "
                   f"notebooks/{lab_id}/ folder")


def run_checks(doc: dict, ns: Any, questions: list[str] | None = None) -> list[CheckResult]:
    """Run the public cases of ``questions`` (all when None) against the namespace ``ns``."""
    known = set(doc["questions"])
    for q in questions or []:
        if q not in known:
            raise LabError(f"lab {doc['lab']} has no question {q!r}; its questions are {', '.join(sorted(known))}")
    results = []
    for c in doc["cases"]:
        if questions and c["question"] not in questions:
            continue
        t = c["target"]
        target = (_cases.Call(t["call"], _cases.from_wire(t["args"]), _cases.from_wire(t["kwargs"]))
                  if "call" in t else _cases.Get(t["get"]))
        params = {k: v for k, v in c["compare"].items() if k != "kind"}
        compare = COMPARES[c["compare"]["kind"]](**params)
        try:
            got = target(ns)
        except AttributeError as exc:
            results.append(CheckResult(c["question"], c["name"], False, f"{exc} — did you run the cell that defines it?"))
            continue
        except Exception as exc:
            results.append(CheckResult(c["question"], c["name"], False,
                                       f"{target.describe()} raised {type(exc).__name__}: {exc}"))
            continue
        msg = compare(got, wire.decode(c["expected"]))
        results.append(CheckResult(c["question"], c["name"], msg is None,
                                   f"{target.describe()}: {msg}" if msg else "ok"))
    return results


class _Globals:
    def __init__(self, d: dict):
        self.__dict__["_d"] = d

    def __getattr__(self, name: str) -> Any:
        try:
            return self._d[name]
        except KeyError:
            raise AttributeError(f"name {name!r} is not defined in your notebook") from None


_CURRENT: list[str] = []  # the lab named by the last checker() call in this kernel


def checker(lab_id: str, near: str | Path | None = None):
    """A ``check(question)`` function for a released notebook's first cell.

    The checks file is read at the first call, so the setup cell never fails — also not when
    the grader runs it, where no checks file exists.
    """
    _CURRENT[:] = [lab_id]
    doc: dict = {}

    def check(*questions: str, namespace: dict | None = None) -> None:
        """Run the public checks of these questions (all when none given) on your notebook's names."""
        if not doc:
            doc.update(json.loads(find_checks(lab_id, Path(near) if near else None).read_text(encoding="utf-8")))
        # the notebook's globals — where your answers live — are the caller's globals
        ns = _Globals(namespace if namespace is not None else sys._getframe(1).f_globals)
        results = run_checks(doc, ns, list(questions) or None)
        for r in results:
            print(r)
        passed = sum(r.passed for r in results)
        print(f"{passed}/{len(results)} public checks passed"
              + ("" if passed < len(results) else " — the grader also runs hidden tests"))
        # nothing returned: a notebook would print it under every check cell

    return check


def check(*questions: str, lab: str | None = None) -> None:
    """``ek.check("q3")``: like ``checker(lab)("q3")``, for the lab named last (or the only one here)."""
    lab = lab or (_CURRENT[0] if _CURRENT else None)
    if lab is None:
        found = sorted(Path.cwd().glob("*.checks.json"))
        if len(found) != 1:
            raise LabError("which lab? call check(..., lab='lab01-...') or run the notebook's first cell "
                           f"(check = ek.checker('...')); found {len(found)} checks files here")
        lab = found[0].name[: -len(".checks.json")]
    checker(lab)(*questions, namespace=sys._getframe(1).f_globals)


def check_notebook(path: str | Path, questions: list[str] | None = None) -> list[CheckResult]:
    """Run a student notebook top to bottom as the grader does, then its public checks.

    The program is the one ``edgekit grade`` runs (:func:`edgekit.grading.assemble.assemble`,
    with the student's own notebook as the only copy) in the same in-process IPython
    (:class:`edgekit.grading.kernel.Kernel`): cells the student added count here as they do
    there; ``check`` and ``no-grade`` cells are skipped in both. For an nbgrader notebook the
    public checks are its visible test cells: each passes when it runs without an error.
    """
    import os

    from .assemble import assemble
    from .kernel import Kernel
    from .notebook import read_notebook, role

    path = Path(path).resolve()
    nb = read_notebook(path)
    lab_id = (nb.metadata.get("edgekit") or {}).get("lab")
    nbgrader = any(role(c)[0] == "test" for c in nb.cells)
    if not lab_id and not nbgrader:
        raise LabError(f"{path} is not a released edgekit notebook (no metadata.edgekit.lab)")
    doc = None if nbgrader else json.loads(find_checks(lab_id, path.parent).read_text(encoding="utf-8"))
    program = assemble(None, nb, "nbgrader" if nbgrader else "edgekit")
    cells = [c for c in program.runnable if c.kind != "test" or not questions or c.question in questions]
    old = Path.cwd()
    os.chdir(path.parent)  # notebooks run from their own folder in Jupyter, which is on sys.path
    sys.path.insert(0, str(path.parent))
    try:
        kernel = Kernel(execution="validate", tracebacks=False)
        report = [(c, kernel.run(c.label, c.source)) for c in cells]
        public = [] if doc is None else run_checks(doc, _Globals(kernel.ns), questions)  # same folder as in Jupyter
    finally:
        os.chdir(old)
        sys.path.remove(str(path.parent))
        os.environ.pop("NBGRADER_EXECUTION", None)
    results = []
    for cell, r in report:
        if cell.kind == "test":
            results.append(CheckResult(cell.question or cell.label, "test cell", r.ok, "ok" if r.ok else r.error))
        elif not r.ok and r.ename != "NotImplementedError":
            results.append(CheckResult("notebook", cell.label, False, r.error))
    return results + public
