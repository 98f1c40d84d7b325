"""Values that cross the wall between the grader and a student's process, as plain JSON.

The grader never unpickles anything a student's process sends: pickle runs code on load.
Values travel as JSON with a few tagged forms, and only data comes back — numbers, strings,
bytes, lists, tuples, dicts, sets and numpy arrays of numeric dtypes. Anything else a student's
function returns stays in the student's process and is referred to by a handle.

>>> import numpy as np
>>> v = {"probs": np.array([0.25, 0.75], dtype=np.float32), "label": "cat", "k": (1, 2)}
>>> back = decode(encode(v))
>>> back["label"], back["k"], back["probs"].dtype.name, back["probs"].tolist()
('cat', (1, 2), 'float32', [0.25, 0.75])
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import math
import os
import select
import struct
import sys
import time
from typing import Any

import numpy as np

MAX_MESSAGE = 64 * 2**20  # bytes in one framed message; a bigger answer is refused, not read
MAX_DEPTH = 64
# numeric dtypes only: object arrays would need pickle, strings are sent as str lists instead
DTYPES = {np.dtype(t).str for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                                     "uint32", "uint64", "float16", "float32", "float64",
                                     "complex64", "complex128")}


class WireError(ValueError):
    """A value cannot be sent, or a message received is not valid."""


class Unsendable(WireError):
    """The value is not data (a session, a generator, a class instance...)."""

    def __init__(self, value: Any):
        self.type_name = type(value).__qualname__
        super().__init__(f"a value of type {self.type_name} is not data the grader can compare")


def _enc(v: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise WireError(f"value nested deeper than {MAX_DEPTH} levels")
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int) and not isinstance(v, np.integer):
        return v if abs(v) < 2**63 else {"$bigint": str(v)}
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$float": repr(v)}
    if isinstance(v, (np.ndarray, np.generic)):
        a = np.asarray(v)
        if a.dtype.str not in DTYPES:
            if a.dtype.kind in "US":  # numpy strings: send as (nested) lists of str
                return {"$strarray": a.astype(str).tolist()}
            raise Unsendable(v)
        return {"$nd": a.dtype.str, "shape": list(a.shape), "scalar": isinstance(v, np.generic),
                "data": base64.b64encode(a.tobytes()).decode("ascii")}  # tobytes: C order
    if isinstance(v, complex):
        return {"$complex": [_enc(v.real, depth), _enc(v.imag, depth)]}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, list):
        return [_enc(x, depth + 1) for x in v]
    if isinstance(v, tuple) and isinstance(getattr(type(v), "_fields", None), tuple):  # a namedtuple: keep its names
        return {"$namedtuple": type(v).__name__, "fields": [str(f) for f in type(v)._fields],
                "values": [_enc(x, depth + 1) for x in v]}
    if isinstance(v, tuple):
        return {"$tuple": [_enc(x, depth + 1) for x in v]}
    if isinstance(v, (set, frozenset)):
        items = [_enc(x, depth + 1) for x in v]
        return {"$set": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(v, dict):
        return {"$dict": [[_enc(k, depth + 1), _enc(x, depth + 1)] for k, x in v.items()]}
    raise Unsendable(v)


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data; raises :class:`Unsendable` for anything that is not data."""
    return _enc(value, 0)


def _dec(v: Any, depth: int, hook=None) -> Any:
    if depth > MAX_DEPTH:
        raise WireError(f"message nested deeper than {MAX_DEPTH} levels")
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return [_dec(x, depth + 1, hook) for x in v]
    if not isinstance(v, dict) or len(v) == 0:
        raise WireError(f"unexpected JSON value of type {type(v).__name__}")
    tag = next(iter(v))
    if tag == "$nd":
        dtype = v["$nd"]
        if dtype not in DTYPES:
            raise WireError(f"array dtype {dtype!r} is not allowed")
        shape = tuple(int(n) for n in v["shape"])
        if any(n < 0 for n in shape):
            raise WireError(f"negative array dimension in {shape}")
        raw = base64.b64decode(v["data"], validate=True)
        if len(raw) != math.prod(shape) * np.dtype(dtype).itemsize:
            raise WireError(f"array data holds {len(raw)} bytes, shape {shape} {dtype} needs more or fewer")
        a = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        return a[()] if v.get("scalar") else a
    if tag == "$tuple":
        return tuple(_dec(x, depth + 1, hook) for x in v["$tuple"])
    if tag == "$namedtuple":
        values = [_dec(x, depth + 1, hook) for x in v["values"]]
        try:
            return _namedtuple(str(v["$namedtuple"]), tuple(str(f) for f in v["fields"]))(*values)
        except TypeError as exc:
            raise WireError(f"bad namedtuple: {exc}") from None
    if tag == "$set":
        return {_dec(x, depth + 1, hook) for x in v["$set"]}
    if tag == "$dict":
        return {_dec(k, depth + 1, hook): _dec(x, depth + 1, hook) for k, x in v["$dict"]}
    if tag == "$bytes":
        return base64.b64decode(v["$bytes"], validate=True)
    if tag == "$float":
        if v["$float"] not in ("nan", "inf", "-inf"):
            raise WireError(f"bad float {v['$float']!r}")
        return float(v["$float"])
    if tag == "$bigint":
        return int(v["$bigint"])
    if tag == "$complex":
        re, im = v["$complex"]
        return complex(_dec(re, depth + 1, hook), _dec(im, depth + 1, hook))
    if tag == "$strarray":
        return np.array(v["$strarray"], dtype=str)
    if hook is not None:  # the student side also resolves $obj/$ref/$handle argument tags
        return hook(tag, v, lambda x: _dec(x, depth + 1, hook))
    raise WireError(f"unknown tag {tag!r}")


@functools.lru_cache(maxsize=256)
def _namedtuple(name: str, fields: tuple[str, ...]) -> type:
    """A namedtuple class made here from names only (ValueError for names that are not identifiers)."""
    return collections.namedtuple(name, fields)


def decode(data: Any, hook=None) -> Any:
    """The inverse of :func:`encode`; raises :class:`WireError` on anything malformed."""
    try:
        return _dec(data, 0, hook)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise WireError(f"malformed value: {type(exc).__name__}: {exc}") from None


def dumps(value: Any) -> str:
    """Deterministic JSON text of an encoded value (sorted keys)."""
    return json.dumps(encode(value), sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Any:
    return decode(json.loads(text))


# -- framing: 4-byte big-endian length, then UTF-8 JSON ------------------------------------------

def _wait(fd: int, deadline: float | None, write: bool) -> None:
    """Block until ``fd`` is ready, or raise TimeoutError at ``deadline`` (time.monotonic)."""
    if deadline is None:
        return
    left = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(left, 0)) if write else select.select([fd], [], [], max(left, 0))
    if not (ready[1] if write else ready[0]):
        raise TimeoutError("the other side did not keep up before the deadline")


def send(fd: int, message: dict, deadline: float | None = None) -> None:
    """Write one framed JSON message (already encoded values inside) to a pipe.

    With a ``deadline`` the pipe must be non-blocking: a reader that stops reading then costs a
    TimeoutError, not a grader stuck forever in ``write``.
    """
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_MESSAGE:
        raise WireError(f"message of {len(body)} bytes exceeds the {MAX_MESSAGE} byte limit")
    view = memoryview(struct.pack(">I", len(body)) + body)
    while view:
        _wait(fd, deadline, write=True)
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    chunks, got = [], 0
    while got < n:
        _wait(fd, deadline, write=False)  # a sender that trickles bytes cannot hold us past the deadline
        try:
            chunk = os.read(fd, min(n - got, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise EOFError(f"pipe closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd: int, deadline: float | None = None) -> dict:
    """Read one framed message; :class:`WireError` if it is oversized or not a JSON object,
    TimeoutError if it is not complete by ``deadline``."""
    (n,) = struct.unpack(">I", read_exact(fd, 4, deadline))
    if n > MAX_MESSAGE:
        raise WireError(f"message of {n} bytes announced, limit is {MAX_MESSAGE}")
    try:
        msg = json.loads(read_exact(fd, n, deadline))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"message is not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise WireError("message is not a JSON object")
    return msg


def leave(code: int) -> None:
    """End a forked process at once (no atexit, no parent's cleanup), after what it printed is out."""
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    os._exit(code)
