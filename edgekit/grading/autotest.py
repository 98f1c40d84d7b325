'''Expand nbgrader's ``### AUTOTEST`` and ``### HASHED AUTOTEST`` directives as nbgrader 0.9.6 does.

An nbgrader test cell may hold a line such as ``### AUTOTEST total; mean(xs)``. nbgrader never runs
that line as it is: ``generate_assignment`` evaluates each expression against the instructor's
solution, picks a list of checks by the value's type (``int``, ``list``, ``dict``...; the templates
live in a course's ``autotests.yml``) and writes the checks, with the solution's values filled in,
into the test cell. ``HASHED`` writes a salted SHA-1 of each value instead, so the student cannot
read the answer. Autograde runs the expanded cell. Run as a comment, the directive passes on any
submission, stubs included; :func:`expand` gives the grader the cell nbgrader would run:

>>> solution = {}; exec("a = 5", solution)
>>> print(expand("### AUTOTEST a", namespace_executor(solution), index=1))
from hashlib import sha1
assert str(type(a)) == """<class 'int'>""", """type of a is not int. ...
assert str(a) == """5""", """value of a is not correct"""
<BLANKLINE>
print('Success!')

What nbgrader does, mirrored in its result rather than its mechanism (it talks to a kernel):

- every code cell of the source notebook runs, in order, in one solution namespace; the lines of a
  test cell before a directive run before the directive is evaluated (:func:`expand_notebook`);
- an expression's "type" is the kernel's ``text/plain`` display of ``type(expr)`` with the outer
  quotes stripped: ``int``, ``numpy.ndarray``, ``__main__.Point`` — so only builtins and
  ``pandas.core.frame.DataFrame`` match a template; others get ``default``;
- each check's expected value is the display of ``str(check)`` with its outer quotes stripped
  (``"it's"`` -> ``it's``; a value that itself starts or ends with a quote loses it, and the check
  then fails even on the solution — nbgrader does the same, as the recorded fixture shows);
- the salt of a hashed check comes from the cell's source and its index in the notebook, so the
  same notebook always expands to the same code.

Templates are rendered with Jinja2 semantics; the usual ``{{name}}`` placeholders need no Jinja2.

NOTICE: ported from nbgrader 0.9.6 (``nbgrader/preprocessors/instantiatetests.py``; the default
templates in ``autotests.json`` are the python3 section of ``nbgrader/docs/source/user_guide/
autotests.yml``, which ``nbgrader quickstart --autotest`` copies into a course).
Copyright (c) 2014 Project Jupyter Contributors. All rights reserved. Used under the BSD
3-Clause licence, whose full text (conditions and disclaimer) is in ``NBGRADER-LICENSE`` beside
this module.
'''

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._errors import AutotestError, MissingExtraError
from .kernel import python_of

DELIMITER = "AUTOTEST"
HASHED = "HASHED"
FILENAME = "autotests.yml"

#: ``execute(code)`` runs code in the solution namespace, as a Jupyter cell, and returns the value
#: of its last expression statement (None when it ends with another statement): what the kernel
#: would display. :func:`display_text` turns it into the text nbgrader reads back.
Executor = Callable[[str], Any]

_REQUIRED = ("dispatch", "normalize", "check", "templates")


def _default_templates() -> dict[str, Any]:
    data = json.loads((Path(__file__).with_name("autotests.json")).read_text(encoding="utf-8"))
    return data["python3"]


DEFAULT_TEMPLATES: dict[str, Any] = _default_templates()


def has_directive(source: str) -> bool:
    """nbgrader's trigger: the word anywhere in a code cell (it then starts a kernel)."""
    return DELIMITER in source


def find_templates(notebook_dir: Path, course_root: Path | None = None) -> Path | None:
    """The autotests.yml nbgrader would read: the source notebook's folder first, then the course
    root (nbgrader's working directory). None: nbgrader would stop with FileNotFoundError; edgekit
    then uses :data:`DEFAULT_TEMPLATES`, the file ``nbgrader quickstart --autotest`` installs."""
    for folder in (notebook_dir, course_root):
        if folder is not None and (Path(folder) / FILENAME).is_file():
            return Path(folder) / FILENAME
    return None


def load_templates(path: Path | None, kernel: str = "python3") -> dict[str, Any]:
    """One kernel's section of a course's autotests.yml; None gives :data:`DEFAULT_TEMPLATES`."""
    if path is None:
        return DEFAULT_TEMPLATES
    try:
        import yaml
    except ImportError:
        raise MissingExtraError(f"{path} holds this course's AUTOTEST templates; reading it needs "
                                "PyYAML, which is not installed: pip install pyyaml") from None
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AutotestError(f"{path} is not valid YAML ({exc}); nbgrader cannot read it either") from None
    if not isinstance(data, dict) or not isinstance(data.get(kernel), dict):
        kernels = sorted(map(str, data)) if isinstance(data, dict) else []
        raise AutotestError(f"{path} has no section for kernel {kernel!r} (it has {kernels}); "
                            f"add a {kernel}: section, e.g. copy nbgrader's default")
    section = data[kernel]
    missing = [k for k in _REQUIRED if k not in section]
    by_type = section.get("templates")
    if missing or not isinstance(by_type, dict) or "default" not in by_type:
        raise AutotestError(f"{path}, section {kernel}: missing {missing or ['templates: default']}; "
                            "nbgrader needs dispatch, normalize, check and templates with a default entry")
    for kind, checks in by_type.items():
        if not isinstance(checks, list) or not all(isinstance(c, dict) and {"test", "fail"} <= set(c)
                                                   for c in checks):
            raise AutotestError(f"{path}, section {kernel}, templates.{kind}: expected a list of "
                                "{test: ..., fail: ...} entries")
    return section


def expand(source: str, execute: Executor, *, index: int, grade: bool = True,
           templates: dict[str, Any] | None = None) -> str:
    """The cell nbgrader's generate_assignment writes for ``source`` (the source notebook's cell at
    position ``index``, header cells counted). Every line of the cell runs through ``execute``, so
    the namespace afterwards is as after running the cell; a cell without directives comes back as is.

    Raises :class:`AutotestError` for a directive outside a grade cell, and when the solution
    fails on the cell's code or on an expression (nbgrader then stops generating the assignment).
    """
    t = DEFAULT_TEMPLATES if templates is None else templates
    if not source:
        return source
    # nbgrader seeds the salt from the cell, not at random, so a release is reproducible
    salt_int = int(hashlib.sha256((source + str(index)).encode("utf-8")).hexdigest(), 16) % 10**6
    new_lines: list[str] = []
    pending: list[str] = []  # plain lines run before the next directive is evaluated
    setup_done = False
    for line in source.split("\n"):
        if DELIMITER not in line or line.strip()[:1] != "#":
            new_lines.append(line)
            pending.append(line)
            continue
        _run(execute, "\n".join(pending), index)
        pending = []
        if not grade:
            raise AutotestError(f"cell {index}: an AUTOTEST directive in a cell that is not a grade cell "
                                "(nbgrader refuses it); mark the cell 'Autograder tests'")
        if t.get("setup") is not None and not setup_done:
            new_lines.append(t["setup"])
            setup_done = True
            _run(execute, t["setup"], index)
        at = line.find(DELIMITER)
        use_hash = HASHED in line[:at]
        if use_hash and t.get("hash") is None:
            raise AutotestError(f"cell {index}: HASHED AUTOTEST, but the templates have no 'hash' entry")
        snippets = [s.strip() for s in line[at + len(DELIMITER):].strip(";").split(";")]
        if "" in snippets:
            snippets.remove("")  # only the first empty one, as nbgrader does
        for snippet in snippets:
            salt = None
            if use_hash:
                salt_int += 1
                salt = hex(salt_int)[2:]
            for test, value, message in _instantiate(snippet, salt, t, execute, index):
                new_lines.append(_render(t["check"], snippet=test, value=value, message=message))
            new_lines.append("")
    if grade and DELIMITER in source and t.get("success") is not None:
        new_lines.append(t["success"])
        pending.append(t["success"])
    if pending:
        _run(execute, "\n".join(pending), index)
    return "\n".join(new_lines)


def expand_notebook(cells: Sequence[dict[str, Any]], execute: Executor,
                    templates: dict[str, Any] | None = None) -> list[str]:
    """Every cell's source after expansion, for nbformat cells (dicts) in notebook order.

    As nbgrader: nothing runs when no code cell has a directive; otherwise every code cell runs,
    in order, in the namespace behind ``execute`` (give it a fresh one: the solution cells run here).
    """
    sources = [_source(c) for c in cells]
    if not any(c.get("cell_type") == "code" and has_directive(s) for c, s in zip(cells, sources)):
        return sources
    return [expand(s, execute, index=i, grade=_is_grade(c), templates=templates)
            if c.get("cell_type") == "code" else s
            for i, (c, s) in enumerate(zip(cells, sources))]


def namespace_executor(namespace: dict[str, Any]) -> Executor:
    """An :data:`Executor` over a plain namespace dict, run as IPython runs a cell: the last
    expression statement is displayed (``ast_node_interactivity='last_expr'``). Prints are
    dropped, as nbgrader drops the kernel's streams."""
    def execute(code: str) -> Any:
        tree = ast.parse(python_of(code), "<autotest>", "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(tree, "<autotest>", "exec"), namespace)
            if last is None:
                return None
            return eval(compile(ast.Expression(last.value), "<autotest>", "eval"), namespace)
    return execute


def display_text(value: Any) -> str | None:
    """What nbgrader reads back from the kernel: ``text/plain`` of the value, outer quotes stripped.

    Classes, strings and numbers (all nbgrader's default templates read back) need no IPython;
    other values are shown with IPython's ``pretty`` when it is installed, as the kernel shows
    them, else with ``repr``.
    """
    if value is None:
        return None  # IPython displays nothing for None
    return _plain(value).strip('"').strip("'")


def _plain(value: Any) -> str:
    if isinstance(value, type):
        return _type_name(value)
    if isinstance(value, str) or type(value) in (int, float, bool, complex, bytes):
        return repr(value)  # IPython shows these as their repr, on one line
    try:
        from IPython.lib.pretty import pretty
    except ImportError:
        return repr(value)
    return pretty(value, max_width=79)


def _type_name(cls: type) -> str:
    """IPython's display of a class (``IPython.lib.pretty._type_pprint``): ``int``, ``numpy.ndarray``."""
    if [m for m in type(cls).__mro__ if "__repr__" in vars(m)][:1] != [type]:
        return repr(cls)  # a metaclass with its own __repr__
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None)
    if not isinstance(name, str):
        name = cls.__name__ if isinstance(getattr(cls, "__name__", None), str) else "<unknown type>"
    return name if module in (None, "__builtin__", "builtins", "exceptions") else f"{module}.{name}"


def _instantiate(snippet: str, salt: str | None, t: dict[str, Any], execute: Executor,
                 index: int) -> list[tuple[str, str | None, str]]:
    """(check code, solution's value, failure message) for each template of the snippet's type."""
    kind = display_text(_run(execute, _render(t["dispatch"], snippet=snippet), index, snippet))
    by_type = t["templates"]
    checks = by_type.get(kind, by_type["default"])
    out = []
    for check in checks:
        message = _render(check["fail"], snippet=snippet).replace('"', '\\"')
        code = _render(t["normalize"], snippet=check["test"])
        if salt is not None:
            code = _render(t["hash"], snippet=code, salt=salt)
        test = _render(code, snippet=snippet)
        out.append((test, display_text(_run(execute, test, index, snippet)), message))
    return out


def _run(execute: Executor, code: str, index: int, snippet: str | None = None) -> Any:
    try:
        return execute(code)
    except Exception as exc:
        what = f"AUTOTEST {snippet!r}" if snippet is not None else "the cell's code"
        raise AutotestError(f"cell {index}: {what} fails on the instructor's solution "
                            f"({type(exc).__name__}: {exc}) while running:\n{code}\n"
                            "nbgrader's generate_assignment stops here too; fix the solution or "
                            "the directive") from exc


_PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_]\w*)\s*}}")


def _render(template: str, **values: Any) -> str:
    """Render as ``jinja2.Environment(loader=BaseLoader).from_string(template).render(**values)``."""
    template = re.sub(r"\r\n|\r", "\n", template)
    if "{%" in template or "{#" in template or "{{" in _PLACEHOLDER.sub("", template):
        return _jinja(template, values)
    if template.endswith("\n"):
        template = template[:-1]  # Jinja drops one trailing newline of a template
    # an undefined name renders empty, None as "None", as in Jinja
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else "", template)


def _jinja(template: str, values: dict[str, Any]) -> str:
    try:
        import jinja2
    except ImportError:
        raise MissingExtraError("an AUTOTEST template uses Jinja syntax beyond {{name}}: "
                                f"{template!r}; rendering it needs Jinja2: pip install jinja2") from None
    return jinja2.Environment(loader=jinja2.BaseLoader()).from_string(template).render(**values)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _is_grade(cell: dict[str, Any]) -> bool:
    return bool((cell.get("metadata") or {}).get("nbgrader", {}).get("grade", False))
