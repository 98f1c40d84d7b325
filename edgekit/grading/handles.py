"""Objects that live in the student's process, seen from the grader: handles, never copies.

A student's function may return something that is not data (a session, a generator, an object of
their own class). It stays in the student's process; the grader holds a :class:`Remote` whose
calls and reads are requests answered there, as data. Arguments going the other way are encoded
by :func:`encode_arg`: data, a handle the student's process knows, a library object by its import
path, or a function of the grader's that the student's code may call back.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from . import wire

if TYPE_CHECKING:
    from .process import StudentProcess


class Remote:
    """An object living in the student's process (a session, a class instance): usable, not data.

    Calls, attribute reads, ``len``, iteration and indexing are answered by the student's process
    and come back as data; comparisons and truth tests are deliberately not forwarded — an
    ``__eq__`` that always says yes must not decide a test.
    """

    def __init__(self, proc: StudentProcess, handle: int, type_name: str, deadline: float):
        self._proc, self._handle, self.type_name, self._deadline = proc, handle, type_name, deadline

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._proc.request({"op": "call", "handle": self._handle, "args": encode_arg(args, self._proc),
                                   "kwargs": encode_arg(kwargs, self._proc), "mutated": self._proc.replaying},
                                  self._deadline, args)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._proc.request({"op": "get", "handle": self._handle, "attr": attr}, self._deadline)

    def _op(self, fn: str, *args: Any) -> Any:
        return self._proc.request({"op": "op", "fn": fn, "handle": self._handle,
                                   "args": encode_arg(list(args), self._proc)}, self._deadline)

    def __len__(self) -> int:
        return int(self._op("len"))

    def __iter__(self):
        return iter(self._op("iter"))

    def __getitem__(self, key: Any) -> Any:
        return self._op("getitem", key)

    def __instancecheck__(self, obj: Any) -> bool:  # isinstance(p, Point): both the student's, asked there
        if not isinstance(obj, Remote):
            return False
        return bool(self._proc.request({"op": "op", "fn": "isinstance", "handle": obj._handle,
                                        "args": encode_arg([self], self._proc)}, self._deadline))

    def __repr__(self) -> str:
        return f"<{self.type_name} in the student's process>"


def encode_arg(v: Any, proc: StudentProcess | None = None) -> Any:
    """Arguments for the student's process: data, plus tags it resolves there — Obj/Ref/Remote, a
    library object by its import path (``np.float32``), a grader function as a callback."""
    from .targets import to_wire

    def extra(x: Any) -> Any:
        if isinstance(x, Remote):
            return {"$handle": x._handle}
        if isinstance(x, (list, tuple, dict, set, frozenset, str, bytes, int, float, complex)) or x is None:
            return None
        path = _import_path(x)
        if path:
            return {"$import": path}
        if callable(x) and proc is not None:
            key = len(proc.callbacks) + 1
            proc.callbacks[key] = x
            return {"$callback": key, "name": str(getattr(x, "__name__", "callback"))[:60]}
        return None

    return to_wire(v, extra)


def _import_path(x: Any) -> str | None:
    """``"numpy:float32"`` for a class or function a library defines, when importing it gives it back."""
    module, qual = getattr(x, "__module__", None), getattr(x, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qual, str) or module in ("__main__", "builtins") or "<" in qual:
        return None
    mod = sys.modules.get(module)
    try:
        found = mod
        for part in qual.split("."):
            found = getattr(found, part)
    except AttributeError:
        return None
    return f"{module}:{qual}" if mod is not None and found is x else None


def _apply_mutations(args: tuple, mutated: dict, proc: StudentProcess) -> None:
    """Make the caller's lists, dicts and arrays look as the student's code left its copies."""
    import numpy as np

    try:
        for key, enc in mutated.items():
            i = int(key)
            if i >= len(args):
                continue
            new, old = wire.decode(enc, proc._handle_hook(time.monotonic() + 60)), args[i]
            if isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and old.shape == new.shape:
                if old.flags.writeable:
                    old[...] = new
            elif isinstance(old, (list, bytearray)) and isinstance(new, (list, bytes, bytearray)):
                old[:] = new
            elif isinstance(old, dict) and isinstance(new, dict):
                old.clear()
                old.update(new)
    except (wire.WireError, ValueError, TypeError):
        pass
