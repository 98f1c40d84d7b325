"""How a lab's ``tests.py`` says what to check: test cases, targets and comparisons.

A case asks the student's code for a value — ``call("softmax", x)`` or ``get("n_nodes")`` —
and compares it with the same value computed from the instructor's reference solution. The
student's process only ever computes values; the comparison happens in the grader, so nothing
a student patches in their own process can change a verdict.

>>> import numpy as np
>>> c = close(atol=1e-6)
>>> c(np.array([0.1, 0.9]), np.array([0.1, 0.9])) is None
True
>>> print(c(np.array([0.1, 0.8]), np.array([0.1, 0.9])))
values differ: max abs diff 0.1 at index (1,) (got 0.8, expected 0.9); allowed atol + rtol*|expected| = 1e-06 + 1e-05*0.9 = 1e-05 (atol: absolute tolerance, rtol: relative)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# -- targets: what to ask the student's code for (edgekit.grading.targets) ----------------------

from .targets import (Call, Get, Obj, Ref, _plain, _short, call, from_wire, get, obj, raised,  # noqa: E402,F401
                      ref, resolve_local, to_wire)  # (tests.py's names)


def _kind(v: Any) -> str:
    """``a float32 array``, ``a list``, ``an int``: what a value is, said once in a message."""
    name = (f"{v.dtype} array" if isinstance(v, np.ndarray) else f"numpy {v.dtype} scalar"
            if isinstance(v, np.generic) else type(v).__name__)
    return f"{'an' if name[:1] in 'aeio' else 'a'} {name}"  # a uint8, an int64


class Mismatch(str):
    """A comparison's message that also knows the index of the element it reports (or None)."""

    index: tuple | None = None

    def __new__(cls, text: str, index: tuple | None = None):
        m = super().__new__(cls, text)
        m.index = index
        return m


# -- comparisons: (got, expected) -> None when fine, else a message with the numbers -------------


@dataclass(frozen=True)
class close:  # noqa: N801 - used like a function in tests.py
    """Numbers or arrays equal within ``atol + rtol*|expected|``, with the same shape.

    Containers of mixed values are compared part by part, naming the first part that differs:
    dicts key by key (same keys), lists and tuples that are not arrays of numbers item by item
    (same length), strings and ``None`` exactly — e.g. ``{"op": "Conv", "share": 0.25}``,
    ``("Conv", 0.25)``, ``[None, [1.5, 2.5]]``.
    """

    rtol: float = 1e-5
    atol: float = 1e-8
    dtype: bool = False  # also the type and dtype of what is returned (see :func:`type_mismatch`)

    def __call__(self, got: Any, want: Any) -> str | None:
        return (self.dtype and type_mismatch(got, want)) or self._part(got, want, "")

    def _part(self, got: Any, want: Any, where: str) -> str | None:
        at = f"{where}: " if where else ""
        if isinstance(want, dict):
            if not isinstance(got, dict):
                return f"{at}expected a dict with keys {sorted(map(str, want))}, got {type(got).__name__}"
            if set(got) != set(want):
                return f"{at}expected keys {sorted(map(str, want))}, got {sorted(map(str, got))}"
            return next((m for k in want for m in [self._part(got[k], want[k], f"{where}[{k!r}]")] if m), None)
        if want is None or isinstance(want, (str, bytes)):
            return None if type(got) is type(want) and got == want else f"{at}expected {_short(want, 200)}, got {_short(got, 200)}"
        if isinstance(want, (list, tuple)) and not _numbers(want):
            if not isinstance(got, (list, tuple)) or len(got) != len(want):
                return f"{at}expected {len(want)} items like {_short(want)}, got {_short(got)}"
            return next((m for i, (g, w) in enumerate(zip(got, want)) for m in [self._part(g, w, f"{where}[{i}]")] if m),
                        None)
        try:
            if got is None or isinstance(got, (str, bytes, dict)):
                raise TypeError
            g = np.asarray(got, dtype=np.float64) if not np.iscomplexobj(got) else np.asarray(got)
        except (TypeError, ValueError):
            return f"{at}expected numbers like {_short(want)}, got {type(got).__name__} {_short(got)}"
        w = np.asarray(want)
        kinds = "" if _kind(got) == _kind(want) else f" (got {_kind(got)}, expected {_kind(want)})"
        if g.shape != w.shape:
            return f"{at}expected shape {w.shape}, got shape {g.shape}{kinds}"
        if g.size == 0:
            return None
        bad = ~np.isclose(g, w, rtol=self.rtol, atol=self.atol, equal_nan=True)
        if not bad.any():
            return None
        diff = np.where(np.isnan(g) | np.isnan(w), np.inf, np.abs(g - w))
        i = np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), g.shape)
        index = tuple(int(j) for j in i)
        at_index = f" at index {index}" if g.ndim else ""
        allowed = self.atol + self.rtol * abs(float(np.abs(w[i]))) if np.isfinite(w[i]) else 0.0
        return Mismatch(f"{at}values differ{kinds}: max abs diff {_num(diff[i])}{at_index} (got {_num(g[i])}, "
                        f"expected {_num(w[i])}); allowed atol + rtol*|expected| = {self.atol:g} + "
                        f"{self.rtol:g}*{_num(abs(w[i]))} = {_num(allowed)} (atol: absolute tolerance, "
                        "rtol: relative)", index if g.ndim else None)


def type_mismatch(got: Any, want: Any, where: str = "") -> str | None:
    """What is returned must be what the question asks for, not only equal in value: a numpy array
    of the expected dtype (not a list, not uint8 for float32), a numpy scalar of that dtype, a
    Python ``int``/``float``/``str``/``bool`` as expected, tuples, lists and dicts part by part
    (``close(dtype=True)``, ``equal(dtype=True)``).

    >>> print(type_mismatch(np.zeros(2, np.uint8), np.zeros(2, np.float32)))
    expected a float32 array, got a uint8 array
    >>> print(type_mismatch([[0.5]], np.zeros((1, 1), np.float32)))
    expected a numpy array of float32, got list
    >>> print(type_mismatch((np.float32(0.5), np.int64(3)), (np.float32(0.5), 3)))
    [1]: expected int, got numpy.int64 (int(...) converts it)
    """
    at = f"{where}: " if where else ""
    if isinstance(want, (np.ndarray, np.generic)):
        kind = "array" if isinstance(want, np.ndarray) else "scalar"
        if not isinstance(got, np.ndarray if kind == "array" else np.generic):
            return f"{at}expected a numpy {kind} of {want.dtype}, got {_typename(got)}"
        return None if got.dtype == want.dtype else f"{at}expected a {want.dtype} {kind}, got a {got.dtype} {kind}"
    if isinstance(want, (bool, int, float, str, bytes)) or want is None:
        ok = type(got) is type(want) if isinstance(want, (bool, int)) or want is None else isinstance(got, type(want))
        hint = f" ({type(want).__name__}(...) converts it)" if isinstance(got, np.generic) else ""
        return None if ok else f"{at}expected {type(want).__name__}, got {_typename(got)}{hint}"
    if isinstance(want, (list, tuple)):
        if type(got) is not type(want):
            return f"{at}expected a {type(want).__name__}, got {_typename(got)}"
        return next((m for i, (g, w) in enumerate(zip(got, want))
                     for m in [type_mismatch(g, w, f"{where}[{i}]")] if m), None)
    if isinstance(want, dict) and isinstance(got, dict):
        return next((m for k in want if k in got for m in [type_mismatch(got[k], want[k], f"{where}[{k!r}]")] if m),
                    None)
    return None


def _typename(v: Any) -> str:
    t = type(v)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def _numbers(v: Any) -> bool:
    """Whether ``v`` is an array of numbers (rectangular, nothing but numbers in it)."""
    def plain(x: Any) -> bool:
        return all(map(plain, x)) if isinstance(x, (list, tuple)) else not isinstance(x, (dict, str, bytes, type(None)))

    if not plain(v):
        return False
    try:
        np.asarray(v, dtype=np.complex128)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class equal:  # noqa: N801
    """Exactly equal: same type family, same value (arrays: same shape and elements)."""

    dtype: bool = False  # also the type and dtype of what is returned (see :func:`type_mismatch`)

    def __call__(self, got: Any, want: Any) -> str | None:
        if self.dtype and (wrong := type_mismatch(got, want)):
            return wrong
        if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
            g, w = np.asarray(got), np.asarray(want)
            kinds = f" ({_kind(w)})" if _kind(got) == _kind(want) else f" (got {_kind(got)}, expected {_kind(want)})"
            if g.shape != w.shape:
                return f"expected shape {w.shape}, got shape {g.shape}{kinds}"
            if np.array_equal(g, w):
                return None
            if not g.ndim:
                return f"expected {_short(w[()])}, got {_short(g[()])}{kinds}"
            n = int((g != w).sum())
            i = tuple(int(j) for j in np.argwhere(g != w)[0])
            return Mismatch(f"{n} of {w.size} elements differ; first at {i}: got {_short(g[i])}, "
                            f"expected {_short(w[i])}{kinds}", i)
        if _same(got, want):
            return None
        kinds = (f" (got {_kind(got)}, expected {_kind(want)})"
                 if isinstance(got, np.generic) or isinstance(want, np.generic) else "")
        return _first_difference(got, want) or f"expected {_short(want, 200)}, got {_short(got, 200)}{kinds}"


@dataclass(frozen=True)
class within:  # noqa: N801
    """A number between ``lo`` and ``hi`` (inclusive); ignores the reference value."""

    lo: float
    hi: float

    def __call__(self, got: Any, want: Any = None) -> str | None:
        if isinstance(got, bool) or not isinstance(got, (int, float, np.number)):
            return f"expected a number between {self.lo} and {self.hi}, got {type(got).__name__} {_short(got)}"
        if self.lo <= float(got) <= self.hi:
            return None
        return f"expected a number between {self.lo} and {self.hi}, got {_num(got)}"


@dataclass(frozen=True, eq=False)
class against:  # noqa: N801
    """Compare with ``expected`` from an oracle (ONNX Runtime, a trusted parser), not with the reference's value:
    ``case("q1", "[-1, 3]", call("qparams", -1.0, 3.0), against(ort_qparams(-1.0, 3.0), close(rtol=1e-6)))``."""

    expected: Any
    compare: Callable[[Any, Any], str | None] = field(default_factory=close)

    def __call__(self, got: Any, want: Any = None) -> str | None:
        return self.compare(got, self.expected)


def _first_difference(got: Any, want: Any, where: str = "") -> str | None:
    """Where two containers first differ, e.g. "at ['nodes']: expected 34, got 32"."""
    if isinstance(want, dict) and isinstance(got, dict):
        if got.keys() != want.keys():
            missing, extra = sorted(map(str, want.keys() - got.keys())), sorted(map(str, got.keys() - want.keys()))
            return f"{where or 'the dict'}: missing keys {missing}, unexpected keys {extra}"
        for k in want:
            if not _same(got[k], want[k]):
                return _first_difference(got[k], want[k], f"{where}[{k!r}]")
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        if len(got) != len(want):
            return f"{where or 'the list'}: expected {len(want)} items, got {len(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            if not _same(g, w):
                return _first_difference(g, w, f"{where}[{i}]")
    return f"at {where}: expected {_short(want, 200)}, got {_short(got, 200)}" if where else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                              and not isinstance(a, bool) and a == b)


def _num(x: Any) -> str:
    x = complex(x) if np.iscomplexobj(x) else float(x)
    if isinstance(x, complex):
        return repr(x)
    return "nan" if math.isnan(x) else f"{x:.6g}"


# -- cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One graded check of one question; ``weight`` shares the question's points among cases."""

    question: str
    name: str
    target: Callable[[Any], Any]  # Call, Get, or any function of the namespace
    compare: Callable[[Any, Any], str | None] = field(default_factory=close)
    weight: float = 1.0
    public: bool = False

    @property
    def key(self) -> str:
        return f"{self.question}: {self.name}"

    def describe(self) -> str:
        return self.target.describe() if hasattr(self.target, "describe") else self.name


_COLLECTING: list[list[Case]] = []


def case(question: str, name: str, target: Any = None, compare: Any = None, *,
         weight: float = 1.0, public: bool = False):
    """Declare a test case in a lab's ``tests.py``; usable as a call or as a decorator.

    ``public=True`` cases are copied (with their expected values) into the student version, so
    the student's ``check()`` runs them; they must use :func:`call`/:func:`get` targets and one
    of the built-in comparisons. Everything else stays hidden in the grader.
    """
    def register(t: Any) -> Any:
        c = Case(question, name, t, compare or close(), weight, public)
        if public and not isinstance(t, (Call, Get)):
            raise TypeError(f"public case {c.key!r} must use call(...) or get(...): a function target "
                            "cannot be shipped to students")
        if weight <= 0:
            raise ValueError(f"case {c.key!r}: weight must be > 0, got {weight}")
        if not _COLLECTING:
            raise RuntimeError("case() is only meaningful inside a lab's tests.py loaded by edgekit")
        _COLLECTING[-1].append(c)
        return t

    return register if target is None else register(target)
