"""edgekit's layers, read from the source: every import points down a layer or stays in its subpackage.

    _errors, _extras, _paths, _io, _sysfs        (base: imports nothing of edgekit above it)
      -> runtime/   grading/                      (siblings: neither imports the other)
        -> perf/    vision/                       (siblings)
          -> deploy/
            -> cli/                               (and __main__)

Each module's imports are read from its AST, at module level *and* inside functions (a lazy
import is still a dependency). The root ``edgekit/__init__.py`` is the one exception: its lazy
table names every layer on purpose. ARCHITECTURE.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import edgekit

PACKAGE = Path(edgekit.__file__).resolve().parent
BASE = {"_errors", "_extras", "_paths", "_io", "_sysfs", "_version"}
RANK = {"runtime": 1, "grading": 1, "perf": 2, "vision": 2, "deploy": 3, "cli": 4}


def sources(root: Path = PACKAGE) -> dict[str, tuple[str, bool]]:
    """module name -> (source, is_package) for every .py file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        out[".".join(parts)] = (path.read_text(encoding="utf-8"), is_pkg)
    return out


def imports(name: str, source: str, is_pkg: bool, known: set[str]) -> list[tuple[str, str, int]]:
    """(target module, imported name or "", line) for each edgekit import in one module."""
    package = name if is_pkg else name.rpartition(".")[0]
    found = []
    tree = ast.parse(source)
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports never run
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "edgekit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "edgekit":
                continue
            for a in node.names:  # `from pkg import module` depends on the module itself
                sub = f"{target}.{a.name}"
                found.append((sub, "", node.lineno) if sub in known else (target, a.name, node.lineno))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def layer(module: str) -> tuple[str, int]:
    """(group, rank): the subpackage (or base module) a module belongs to."""
    parts = module.split(".")
    if len(parts) == 1:
        return "edgekit", 99  # the root package: only its lazy table, never imported by a module
    group = "cli" if parts[1] == "__main__" else parts[1]
    if group in BASE:
        return "base", 0
    return group, RANK[group]


def violations(mods: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import that points up a layer, into a sibling, or at a private name of another subpackage."""
    known = set(mods)
    bad = []
    for name, (source, is_pkg) in mods.items():
        if name == "edgekit":
            continue
        group, rank = layer(name)
        for target, imported, line in imports(name, source, is_pkg, known):
            tgroup, trank = layer(target)
            where = f"{name}:{line} imports {target}" + (f".{imported}" if imported else "")
            if tgroup == group:
                continue
            if target == "edgekit":
                bad.append(f"{where}: the root package (import the module that defines the name)")
            elif trank >= rank:
                bad.append(f"{where}: {'a sibling' if trank == rank else 'a layer above'} ({tgroup} from {group})")
            elif tgroup != "base" and (imported.startswith("_") or any(p.startswith("_") for p in target.split(".")[2:])):
                bad.append(f"{where}: a private name of another subpackage")
    return bad


def cycles(mods: dict[str, tuple[str, bool]]) -> list[list[str]]:
    """Import cycles between modules (Tarjan's strongly connected components of size > 1, or self-loops)."""
    known = set(mods)
    graph = {n: sorted({t for t, _, _ in imports(n, s, p, known) if t in known and t != "edgekit"} - {n})
             for n, (s, p) in mods.items() if n != "edgekit"}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down_a_layer():
    assert violations(sources()) == []


def test_no_import_cycles_even_inside_functions():
    assert cycles(sources()) == []


def test_every_subpackage_has_a_layer():
    groups = {layer(n)[0] for n in sources() if n != "edgekit"}
    assert groups <= set(RANK) | {"base"}, groups - set(RANK)


@pytest.mark.parametrize("module, line, why", [
    ("edgekit.runtime.zoo", "from ..perf.bench import benchmark", "a layer above"),
    ("edgekit.perf.stats", "from ..vision import image", "a sibling"),
    ("edgekit.grading.wire", "from ..runtime.model import load", "a sibling"),
    ("edgekit._errors", "from .runtime import zoo", "a layer above"),
    ("edgekit.deploy.npu", "from ..runtime.model import _x", "a private name"),
    ("edgekit.perf.bench", "def f():\n    from ..deploy import quantization", "a layer above"),
])
def test_a_deliberate_bad_import_is_caught(module, line, why):
    mods = sources()
    source, is_pkg = mods[module]
    mods[module] = (source + "\n" + line + "\n", is_pkg)
    found = violations(mods)
    assert any(module in v and why in v for v in found), found


def test_a_deliberate_cycle_is_caught():
    mods = sources()
    source, is_pkg = mods["edgekit.runtime.info"]
    mods["edgekit.runtime.info"] = (source + "\ndef f():\n    from . import model\n", is_pkg)
    assert any("edgekit.runtime.info" in c and "edgekit.runtime.model" in c for c in cycles(mods))


@pytest.mark.parametrize("package", ["edgekit", "edgekit.grading"])
def test_no_module_is_named_like_a_name_its_package_exports(package):
    """``ek.profile`` must stay the function when ``edgekit.perf.profiler`` is imported: Python binds an
    imported submodule onto its package, so a module named like a public function would replace it."""
    import importlib

    pkg = importlib.import_module(package)
    folder = Path(pkg.__file__).parent
    clashes = [n for n in pkg.__all__ if ((folder / f"{n}.py").exists() or (folder / n / "__init__.py").exists())
               and not isinstance(getattr(pkg, n), type(pkg))]
    assert clashes == []
