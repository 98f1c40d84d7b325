"""What a lab's ``tests.py`` asks the student's code for: ``call("softmax", x)``, ``get("n_nodes")``,
arguments built in the student's process (``obj``, ``ref``), and how they cross the wire.

The comparisons that judge the answers are in :mod:`edgekit.grading.cases`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Obj:
    """An argument built inside the student's process from an importable factory, e.g. a fake
    clock: ``obj("edgekit.grading.fakes:FakeClock", ticks=[0.0, 0.5])``."""

    factory: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Ref:
    """An argument that is one of the student's own globals (e.g. their function)."""

    name: str


@dataclass(frozen=True)
class Call:
    """Call the student's function ``name`` with ``args``/``kwargs`` (data, :class:`Obj`, :class:`Ref`)."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __call__(self, ns: Any) -> Any:
        resolve = getattr(ns, "_resolve", None) or (lambda v: resolve_local(v, ns))
        return getattr(ns, self.name)(*resolve(self.args), **resolve(self.kwargs))

    def describe(self) -> str:
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class Get:
    """Read the student's global variable ``name``."""

    name: str

    def __call__(self, ns: Any) -> Any:
        return getattr(ns, self.name)

    def describe(self) -> str:
        return self.name


def call(name: str, *args: Any, **kwargs: Any) -> Call:
    return Call(name, args, kwargs)


def get(name: str) -> Get:
    return Get(name)


def obj(factory: str, *args: Any, **kwargs: Any) -> Obj:
    return Obj(factory, args, kwargs)


def ref(name: str) -> Ref:
    return Ref(name)


def raised(thunk: Callable[[], Any]) -> tuple[str, str]:
    """``(exception name, message)`` of what ``thunk()`` raised, ``("no error", "")`` if nothing.

    The same answer on the reference (a real exception) and in the grader, where the student's
    error arrives rebuilt with its class name and message (see :mod:`edgekit.grading.errors`);
    a student process that died is not an answer and propagates. For cases like
    ``lambda ns: raised(lambda: ns.f(-1))[0]`` with ``equal()``.
    """
    from .errors import StudentError, StudentGone

    try:
        thunk()
    except StudentGone:
        raise
    except StudentError as exc:
        if type(exc) is StudentError:  # a bare StudentError carries "Name: message"
            name, _, message = str(exc).partition(": ")
            return name, message
        return type(exc).__name__, str(exc)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "no error", ""


def resolve_local(v: Any, ns: Any) -> Any:
    """Build :class:`Obj` and look up :class:`Ref` arguments in this process (reference, self-check)."""
    if isinstance(v, Obj):
        import importlib

        module, _, attr = v.factory.partition(":")
        factory = importlib.import_module(module)
        for part in attr.split("."):
            factory = getattr(factory, part)
        return factory(*resolve_local(v.args, ns), **resolve_local(v.kwargs, ns))
    if isinstance(v, Ref):
        return getattr(ns, v.name)
    if isinstance(v, (list, tuple)):
        return type(v)(resolve_local(x, ns) for x in v)
    if isinstance(v, dict):
        return {k: resolve_local(x, ns) for k, x in v.items()}
    return v


def to_wire(v: Any, extra: Callable[[Any], Any] | None = None) -> Any:
    """Arguments as JSON: data via :mod:`wire`, :class:`Obj`/:class:`Ref` as tags built on the other side."""
    from . import wire

    tagged = extra(v) if extra is not None else None
    if tagged is not None:
        return tagged
    if isinstance(v, Obj):
        return {"$obj": v.factory, "args": to_wire(tuple(v.args), extra), "kwargs": to_wire(dict(v.kwargs), extra)}
    if isinstance(v, Ref):
        return {"$ref": v.name}
    if isinstance(v, list):
        return [to_wire(x, extra) for x in v]
    if isinstance(v, tuple):
        return {"$tuple": [to_wire(x, extra) for x in v]}
    if isinstance(v, dict):
        return {"$dict": [[to_wire(k, extra), to_wire(x, extra)] for k, x in v.items()]}
    return wire.encode(v)


def from_wire(data: Any) -> Any:
    """The inverse of :func:`to_wire`, keeping :class:`Obj`/:class:`Ref` unbuilt (for public checks)."""
    from . import wire

    def hook(tag: str, v: dict, dec: Callable[[Any], Any]) -> Any:
        if tag == "$obj":
            return Obj(str(v["$obj"]), tuple(dec(v["args"])), dict(dec(v["kwargs"])))
        if tag == "$ref":
            return Ref(str(v["$ref"]))
        raise wire.WireError(f"unknown tag {tag!r}")

    return wire.decode(data, hook)


def _short(v: Any, limit: int = 40) -> str:
    """A value as a message shows it, pasteable where it is small: ``np.array([0, 45], dtype=np.uint8)``,
    ``65`` for ``np.uint8(65)``; a big array by its dtype and shape, ``float32 array of shape (8,)``."""
    if isinstance(v, np.ndarray):
        if v.size > 6 or v.dtype.kind not in "biufc":
            return f"{v.dtype} array of shape {tuple(v.shape)}"
        return f"np.array({_plain(v.tolist())!r}, dtype=np.{v.dtype})"
    if isinstance(v, Obj):
        return f"{v.factory.split(':')[-1]}(...)"
    if isinstance(v, Ref):
        return v.name
    text = repr(_plain(v))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(v: Any) -> Any:
    """numpy scalars as Python numbers, inside lists, tuples and dicts too (numpy 2 reprs them as ``np.uint8(65)``)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, tuple) and not hasattr(type(v), "_fields"):
        return tuple(_plain(x) for x in v)
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v
