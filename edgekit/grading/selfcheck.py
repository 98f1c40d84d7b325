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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import cases as _cases
from . import feedback, wire
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
    limits = {k: getattr(lab.limits, k) for k in ("call_s", "cell_s", "output_kb")}  # enforced by check() too
    return {"lab": lab.id, "format": 1, "cases": out, "limits": limits,
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
    output: str = ""  # what the call printed, summarised (local_limits.Output.summary)

    def to_dict(self) -> dict:
        return {"schema": "edgekit.grading.check/1", **asdict(self)}

    def __str__(self) -> str:
        return (f"{'PASS' if self.passed else 'FAIL'}  {self.question}: {self.name}"
                + ("" if self.passed else f"\n      {self.message}")
                + (f"\n      {self.output}" if self.output else ""))


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


def run_checks(doc: dict, ns: Any, questions: list[str] | None = None,
               label_of: Callable[[str], str | None] | None = None) -> list[CheckResult]:
    """Run the public cases of ``questions`` (all when None) against the namespace ``ns``, each call
    within the grader's ``call_s`` and its printing summarised; messages as the grader words them
    (:mod:`edgekit.grading.feedback`). ``label_of`` names a cell by its code's file name."""
    from .local_limits import TimeLimit, captured, time_limit

    known = set(doc["questions"])
    for q in questions or []:
        if q not in known:
            raise LabError(f"lab {doc['lab']} has no question {q!r}; its questions are {', '.join(sorted(known))}")
    limits = doc.get("limits") or {}
    targets = [(c, _target(c["target"])) for c in doc["cases"]]
    owner = feedback.owners((c["question"], t) for c, t in targets)
    results, hung = [], set()
    for c, target in targets:
        if questions and c["question"] not in questions:
            continue
        q, name = c["question"], c["name"]
        if q in hung:  # as the grader does: a question whose code hung is not run again
            results.append(CheckResult(q, name, False, "not run: your code hung on an earlier case of this question"))
            continue
        params = {k: v for k, v in c["compare"].items() if k != "kind"}
        compare = COMPARES[c["compare"]["kind"]](**params)
        with captured() as out:
            try:
                with time_limit(limits.get("call_s")):
                    got = target(ns)
            except TimeLimit as stop:
                got, msg = None, f"{_name(target)} did not return within {stop.seconds:g} s, the grader's limit"
                hung.add(q)
            except Exception as exc:  # noqa: BLE001 - the student's error is the answer
                got, msg = None, feedback.raised(target.describe(), exc, q, owner, label_of, _name(target))
            else:
                msg = feedback.compared(target, compare, got, wire.decode(c["expected"]))
        results.append(CheckResult(q, name, msg is None, msg or "ok", out.summary(limits.get("output_kb"))))
    return results


def _target(t: dict):
    if "call" in t:
        return _cases.Call(t["call"], _cases.from_wire(t["args"]), _cases.from_wire(t["kwargs"]))
    return _cases.Get(t["get"])


def _name(target) -> str:
    return getattr(target, "name", "") or target.describe()


class _Globals:
    _resolve = None  # Call resolves Obj/Ref arguments here, in this process

    def __init__(self, d: dict):
        self.__dict__["_d"] = d

    def __getattr__(self, name: str) -> Any:
        try:
            return self._d[name]
        except KeyError:
            if name.startswith("__"):
                raise AttributeError(name) from None
            raise feedback.missing_name(name) from None


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


def open_notebook(path: str | Path):
    """Read the student's saved notebook, or say what to do: the name they meant, the checkpoint copy."""
    import difflib

    from .notebook import read_notebook

    path = Path(path)
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else Path(".")
        near = [str(folder / n) if str(path.parent) not in ("", ".") else n for n in difflib.get_close_matches(
            path.name, [p.name for p in folder.glob("*.ipynb")] + [p.name for p in folder.glob("*/*.ipynb")
                                                                  if ".ipynb_checkpoints" not in p.parts], n=3)]
        hint = (f"; did you mean {' or '.join(near)}?" if near else
                f"; the notebooks in {folder.resolve()} are: {', '.join(sorted(p.name for p in folder.glob('*.ipynb'))) or 'none'}")
        raise LabError(f"no such file: {path}{hint}")
    try:
        return read_notebook(path)
    except LabError as exc:
        saved = path.parent / ".ipynb_checkpoints" / f"{path.stem}-checkpoint.ipynb"
        if saved.is_file():
            raise LabError(f"{exc}\nJupyter keeps the last checkpoint in {saved}: copy it over {path.name} "
                           "(or in Jupyter: File > Revert Notebook to Checkpoint)") from None
        raise


def cell_name(cell) -> str:
    """A cell as a student finds it in JupyterLab, which shows no numbers: its section and first line."""
    first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    section = f'in section "{cell.heading}", ' if cell.heading else ""
    return f'{section}the cell starting "{first}"' if first else f"{section}{cell.label}"


def check_notebook(path: str | Path, questions: list[str] | None = None) -> list[CheckResult]:
    """Run a student notebook top to bottom as the grader does, then its public checks.

    The program is the one ``edgekit grade`` runs (:func:`edgekit.grading.assemble.assemble`,
    with the student's own notebook as the only copy) in the same in-process IPython
    (:class:`edgekit.grading.kernel.Kernel`): cells the student added count here as they do
    there; ``check`` and ``no-grade`` cells are skipped in both. Each cell runs within the lab's
    ``cell_s`` and its output is captured (a cell that printed past ``output_kb`` is noted).
    For an nbgrader notebook the public checks are its visible test cells: each passes when it
    runs without an error. Errors of cells that are no question's are results of question
    ``"notebook"``, named by :func:`cell_name`.
    """
    import os

    from .assemble import assemble
    from .kernel import CellResult, Kernel
    from .local_limits import TimeLimit, captured, time_limit
    from .notebook import role

    path = Path(path).resolve()
    nb = open_notebook(path)
    lab_id = (nb.metadata.get("edgekit") or {}).get("lab")
    nbgrader = any(role(c)[0] == "test" for c in nb.cells)
    if not lab_id and not nbgrader:
        raise LabError(f"{path} is not a released edgekit notebook (no metadata.edgekit.lab)")
    doc = None if nbgrader else json.loads(find_checks(lab_id, path.parent).read_text(encoding="utf-8"))
    limits = (doc or {}).get("limits") or {}
    program = assemble(None, nb, "nbgrader" if nbgrader else "edgekit")
    cells = [c for c in program.runnable if c.kind != "test" or not questions or c.question in questions]
    old = Path.cwd()
    os.chdir(path.parent)  # notebooks run from their own folder in Jupyter, which is on sys.path
    sys.path.insert(0, str(path.parent))
    report, loud = [], []
    try:
        kernel = Kernel(execution="validate", tracebacks=False)
        for c in cells:
            with captured() as out:
                try:
                    with time_limit(limits.get("cell_s")):
                        r = kernel.run(c.label, c.source)  # IPython reports a TimeLimit in the cell as its error
                except TimeLimit:  # one that fell between the cell's code and IPython's own
                    r = CellResult(c.label, False, "TimeLimit")
            if r.ename == "TimeLimit":
                r = CellResult(c.label, False, "TimeLimit",
                               f"did not finish within {limits['cell_s']:g} s, the grader's limit for a cell")
            report.append((c, r))
            if limits.get("output_kb") and out.chars > limits["output_kb"] * 1024:
                loud.append((c, out.summary(limits["output_kb"])))
        public = [] if doc is None else run_checks(doc, _Globals(kernel.ns), questions, kernel.filename_label)
    finally:
        os.chdir(old)
        sys.path.remove(str(path.parent))
        os.environ.pop("NBGRADER_EXECUTION", None)
    results = []
    for cell, r in report:
        if cell.kind == "test":
            results.append(CheckResult(cell.question or cell.label, "test cell", r.ok, "ok" if r.ok else r.error))
        elif not r.ok and r.ename != "NotImplementedError":
            where = [w.replace(f"{cell.label}, ", "", 1) if w.startswith(f"{cell.label}, ") else w for w in r.where]
            error = f"{r.ename}: {r.evalue}" if r.evalue else r.ename
            results.append(CheckResult("notebook", cell_name(cell), False, error + (f" ({where[-1]})" if where else "")))
    for cell, summary in loud:
        results.append(CheckResult("notebook", cell_name(cell), True, "ok", summary))
    return results + public
