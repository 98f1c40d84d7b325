"""Decide an nbgrader test cell in the grader: its own code runs here, the student's values come from a probe.

nbgrader runs a test cell in the student's kernel and gives its points when the cell raises
nothing — so anything the student's code did before (an ``__eq__`` that always says yes, a
patched ``AssertionError`` or ``numpy.testing``, a rewritten test) decides the verdict. Here
the test cell runs twice, from the same state:

* **for real** in the student's process, as nbgrader would (state flows on to later cells);
* **replayed** in the grader, in a namespace of its own: builtins, modules and the
  instructor's own functions (``def``/``class``/``import`` of the instructor's cells) are the
  grader's; every other name the cell reads is asked of a *probe* — a fork of the student's
  process taken just before the cell — as data, or as a handle whose calls run there and
  return data. Module-level assignments and ``del`` in the test cell are mirrored into the
  probe, so student code reads what the test set. Every assert and comparison runs here.

The replay's verdict is the grader's. When the two runs disagree the cell is *disputed*: a
forgery, or a cell the replay cannot follow (an ``is`` check, an object compared by the
student's own ``__eq__``); ``--nbgrader-policy`` decides (see :func:`verdict`).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import wire
from .assemble import Cell
from .errors import StudentGone, describe
from .kernel import python_of
from .process import Remote, StudentProcess

SYNC, UNSET, GET, EXEC = "__edgekit_sync__", "__edgekit_unset__", "__edgekit_get__", "__edgekit_exec__"
# calls whose effect is state inside a library (a random generator, print options, warning filters):
# a test cell's call runs in the probe too, so the student's code sees the same state
STATEFUL = {"seed", "manual_seed", "set_seed", "set_printoptions", "seterr", "filterwarnings", "simplefilter",
            "setstate"}


def _sets_state(stmt: ast.stmt) -> bool:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in STATEFUL


@dataclass
class Outcome:
    """One test cell: the replay's verdict, the real run's, and the points it earns under a policy."""

    passed: bool  # the grader's verdict (the replay)
    student_passed: bool | None  # the real run's (what nbgrader would give); None: did not run
    message: str
    disputed: bool = False

    def points_share(self, policy: str) -> bool:
        """Whether the cell earns its points: ``strict`` needs both runs to pass, ``nbgrader`` the real run."""
        if policy == "nbgrader":
            return bool(self.student_passed)
        return self.passed and self.student_passed is not False


def _names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _stores(stmt: ast.stmt) -> tuple[list[str], list[str]]:
    """Names a simple module-level statement binds, and those it deletes."""
    if isinstance(stmt, ast.Delete):
        return [], sorted({n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)})
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name], []
    targets = {ast.Assign: lambda s: s.targets, ast.AugAssign: lambda s: [s.target],
               ast.AnnAssign: lambda s: [s.target]}.get(type(stmt))
    if targets is None:
        return [], []
    return sorted({n.id for t in targets(stmt) for n in ast.walk(t)
                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}), []


class _Mirror(ast.NodeTransformer):
    """After each module-level statement that binds or deletes a name, tell the probe; read the
    student's data globals afresh at every use (student code called in between may change them)."""

    def __init__(self):
        self.live: set[str] = set()

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.live:
            return ast.copy_location(ast.Call(ast.Name(GET, ast.Load()), [ast.Constant(node.id)], []), node)
        return node

    def _call(self, fn: str, names: list[str]) -> ast.stmt:
        return ast.Expr(ast.Call(ast.Name(fn, ast.Load()), [ast.List([ast.Constant(n) for n in names], ast.Load())], []))

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            if isinstance(stmt, (ast.For, ast.AsyncFor)):
                loop = sorted({n.id for n in ast.walk(stmt.target) if isinstance(n, ast.Name)})
                stmt.body = ([self._call(SYNC, loop)] if loop else []) + self._body(stmt.body)
                stmt.orelse = self._body(stmt.orelse)
            elif isinstance(stmt, (ast.While, ast.If)):
                stmt.body, stmt.orelse = self._body(stmt.body), self._body(stmt.orelse)
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                held = sorted({n.id for item in stmt.items if item.optional_vars is not None
                               for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name)})
                stmt.body = ([self._call(SYNC, held)] if held else []) + self._body(stmt.body)
            elif isinstance(stmt, ast.Try):
                stmt.body, stmt.orelse, stmt.finalbody = (self._body(stmt.body), self._body(stmt.orelse),
                                                          self._body(stmt.finalbody))
                for h in stmt.handlers:
                    h.body = self._body(h.body)
            out.append(stmt)
            if _sets_state(stmt):  # np.random.seed(0) and the like: the probe's libraries need it too
                out.append(ast.Expr(ast.Call(ast.Name(EXEC, ast.Load()), [ast.Constant(ast.unparse(stmt))], [])))
            stored, deleted = _stores(stmt)
            if stored:
                out.append(self._call(SYNC, stored))
            if deleted:
                out.append(self._call(UNSET, deleted))
        return out

    def visit_Module(self, node: ast.Module) -> ast.Module:
        node = self.generic_visit(node)
        node.body = self._body(node.body)
        return ast.fix_missing_locations(node)


class Replay:
    """Replays a notebook's test cells in the grader, one probe at a time."""

    def __init__(self, cells: list[Cell], trusted: Path | None = None, workdir: Path | None = None):
        self.cells, self.trusted, self.workdir = cells, trusted, workdir  # workdir: the test's relative files
        self._kernel = None
        self._blank: dict[str, Any] = {}

    def kernel(self):
        if self._kernel is None:
            from .kernel import Kernel

            self._kernel = Kernel(execution="autograde")  # the test sees what it would see in nbgrader's kernel
            self._mirror = _Mirror()
            self._kernel.shell.ast_transformers.append(self._mirror)
            self._blank = dict(self._kernel.ns)
        return self._kernel

    def _trusted_defs(self, index: int, ns: dict) -> list[ast.AST]:
        """Run the imports, functions and classes of the instructor's cells before ``index`` here."""
        trees = []
        for cell in self.cells[:index]:
            if cell.owner != "instructor" or not cell.runs:
                continue
            try:
                tree = ast.parse(python_of(cell.source))
            except SyntaxError:
                continue
            for stmt in tree.body:
                if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    try:
                        exec(compile(ast.Module([stmt], []), f"<{cell.label}>", "exec"), ns)
                        trees.append(stmt)
                    except Exception:
                        continue  # a failing import: the name comes from the student's process instead
        return trees

    def decide(self, proc: StudentProcess, index: int, deadline: float) -> tuple[bool, str]:
        """Run test cell ``index`` here against the probe; ``(passed, message)``."""
        cell = self.cells[index]
        kernel = self.kernel()
        ns = kernel.ns
        ns.clear()
        ns.update(self._blank)
        added = self.trusted is not None and str(self.trusted) not in sys.path
        if added:
            sys.path.insert(0, str(self.trusted))
        old_cwd = os.getcwd()
        if self.workdir is not None:
            os.chdir(self.workdir)
        try:
            try:
                tree = ast.parse(python_of(cell.source))
            except SyntaxError as exc:
                return False, f"SyntaxError: {exc.msg} ({cell.label}, line {exc.lineno})"
            defs = self._trusted_defs(index, ns)
            # every identifier, also those inside a magic's text (``%time r = f(3)``), is looked up
            wanted = _names(tree) | set(re.findall(r"[A-Za-z_]\w*", cell.source)) | set().union(
                *(_names(d) for d in defs))
            wanted = sorted(n for n in wanted if n not in ns and not hasattr(builtins, n))
            found = proc.request({"op": "describe", "names": wanted}, deadline) if wanted else {}
            ns.update(self._bind(found, proc, deadline))
            bound_here = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
            self._mirror.live = {n for n, info in (found or {}).items() if isinstance(info, dict)
                                 and info.get("kind") == "data" and n not in bound_here}
            ns[GET] = lambda name: self._get(name, proc, deadline)
            ns[EXEC] = lambda text: proc.request({"op": "exec", "source": text}, deadline)
            ns[SYNC] = lambda names: self._sync(names, ns, proc, deadline)
            ns[UNSET] = lambda names: [proc.request({"op": "del", "name": n}, deadline) for n in names]
            proc.replaying = True
            with contextlib.redirect_stdout(io.StringIO()):
                result = kernel.execute(cell.label, cell.source, self._mirror)
        except StudentGone as exc:
            return False, str(exc)
        finally:
            proc.replaying = False
            os.chdir(old_cwd)
            if added:
                sys.path.remove(str(self.trusted))
        if result.ok:
            return True, "ok"
        return False, result.error or result.ename

    def _bind(self, found: Any, proc: StudentProcess, deadline: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(found, dict):
            return out
        for name, info in found.items():
            if not isinstance(name, str) or not isinstance(info, dict):
                continue
            kind = info.get("kind")
            if kind == "data":
                out[name] = info.get("value")
            elif kind == "module":
                try:  # the grader's own copy of the library, never the student's
                    out[name] = importlib.import_module(str(info.get("module")))
                except Exception:
                    continue
            elif kind == "handle":
                out[name] = Remote(proc, int(info.get("handle", -1)), str(info.get("type", "object")), deadline)
        return out

    def _get(self, name: str, proc: StudentProcess, deadline: float) -> Any:
        try:
            return proc.request({"op": "get", "name": name}, deadline)
        except NameError:
            raise NameError(f"name {name!r} is not defined") from None

    def _sync(self, names: list[str], ns: dict, proc: StudentProcess, deadline: float) -> None:
        from .process import encode_arg

        for name in names:
            if name not in ns:
                continue
            value = ns[name]
            if isinstance(value, type(sys)):
                continue  # an import in the test cell: the student's process has its own
            try:
                enc = encode_arg(value, proc)
            except wire.WireError:
                continue  # not data and not a function: the student's code cannot use it anyway
            proc.request({"op": "set", "name": name, "value": enc}, deadline)


def verdict(replayed: tuple[bool, str] | None, real: dict | None) -> Outcome:
    """Combine the replay's verdict with the real run's outcome (a ``done`` message, or None)."""
    student = None if real is None else bool(real.get("ok"))
    real_msg = ""
    if real is not None and not real.get("ok"):
        real_msg = describe_done(real)
    if replayed is None:
        return Outcome(False, student, real_msg or "the test cell could not be replayed", disputed=bool(student))
    passed, msg = replayed
    if student is None:
        return Outcome(passed, None, msg if not passed else "ok")
    if passed == student:
        return Outcome(passed, student, "ok" if passed else (real_msg or msg))
    why = (f"your notebook passes this test cell, but replayed by the grader it fails: {msg}" if student else
           f"replayed by the grader this test cell passes, but in your notebook it fails: {real_msg}")
    return Outcome(passed, student, why, disputed=True)


def describe_done(done: dict) -> str:
    from .errors import from_reply

    return describe(from_reply({"mro": done.get("mro") or [done.get("ename") or "Exception"],
                                "message": done.get("evalue", ""), "where": done.get("where")}))
