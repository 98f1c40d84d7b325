"""Teaching diagnoses for feeds that do not fit a model.

``Model.run`` hands the feed straight to ONNX Runtime (fast path) and only comes here when
something went wrong, to turn ``INVALID_ARGUMENT : Invalid rank for input`` into a sentence
that says what was expected, what was got and what to do.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import InputError


def fmt_shape(shape: Sequence[Any]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _looks_like(got: tuple[int, ...], want: Sequence[Any]) -> str:
    """Suggest the usual fixes for a shape mismatch (missing batch axis, NHWC vs NCHW...)."""
    fixed = [d if isinstance(d, int) else None for d in want]
    def fits(shape):
        return len(shape) == len(fixed) and all(w is None or w == g for g, w in zip(shape, fixed))
    if len(got) + 1 == len(fixed) and fits((1,) + got):
        return "it lacks the batch axis: use x[None] (or np.expand_dims(x, 0))"
    if len(got) + 2 == len(fixed) and fits((1, 1) + got):
        return "it lacks the batch and channel axes: use x[None, None]"
    if len(got) == len(fixed) and len(got) <= 5:
        for perm in itertools.permutations(range(len(got))):
            if perm != tuple(range(len(got))) and fits(tuple(got[i] for i in perm)):
                hint = f"x.transpose{perm}"
                if len(got) == 4 and perm == (0, 3, 1, 2):
                    return f"it looks like NHWC (channels last) but the model wants NCHW: use {hint}"
                if len(got) == 4 and perm == (0, 2, 3, 1):
                    return f"it looks like NCHW but the model wants NHWC (channels last): use {hint}"
                return f"the axes seem to be in another order: try {hint}"
    if len(got) == len(fixed) + 1 and got[0] == 1 and fits(got[1:]):
        return "it has an extra leading axis: use x[0] or x.squeeze(0)"
    return "check the pre-processing (resize / crop / layout) against Model.inputs"


def _dtype_hint(got: np.dtype, want: np.dtype) -> str:
    if got.kind in "ui" and want.kind == "f":
        return f"convert and scale it, e.g. x.astype(np.{want.name}) / 255 — did you skip pre-processing?"
    return f"convert it with x.astype(np.{want.name})"


def check_feed(inputs: Sequence[Any], feed: Mapping[str, Any], *, check_nan: bool = True) -> None:
    """Raise :class:`InputError` for the first problem in ``feed``; return if it looks fine.

    ``inputs`` are the model's :class:`~edgekit.runtime.model.TensorSpec` s.
    """
    names = [spec.name for spec in inputs]
    for key in feed:
        if key not in names:
            import difflib

            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"the feed has {key!r}, which is not an input of this model; expected names: {names}.{hint}"
            )
    for spec in inputs:
        if spec.name not in feed:
            raise InputError(
                f"input {spec.name!r} ({spec}) is missing: the model expects {names}, "
                f"the feed has {list(feed)}. Add it: model.run({{{spec.name!r}: x, ...}})"
            )
        value = feed[spec.name]
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"input {spec.name!r} expects a numpy array {spec}, got {type(value).__name__}: "
                f"wrap it with np.asarray(x, dtype=np.{spec.dtype.name})"
            )
        got = f"{value.dtype.name}{fmt_shape(value.shape)}"
        if value.dtype != spec.dtype:
            raise InputError(f"input {spec.name!r} expects {spec}, got {got}: {_dtype_hint(value.dtype, spec.dtype)}")
        if value.ndim != len(spec.shape):
            raise InputError(
                f"input {spec.name!r} expects {len(spec.shape)} dimensions {spec}, got {value.ndim} "
                f"{got}: {_looks_like(value.shape, spec.shape)}"
            )
        for axis, (g, w) in enumerate(zip(value.shape, spec.shape)):
            if isinstance(w, int) and w != g:
                raise InputError(
                    f"input {spec.name!r} expects {spec}, got {got} (axis {axis} is {g}, expected {w}): "
                    f"{_looks_like(value.shape, spec.shape)}"
                )
        if check_nan and value.dtype.kind == "f":
            bad = np.isnan(value)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise InputError(
                    f"input {spec.name!r} contains {int(bad.sum())} NaN value(s) (first at index {first}); "
                    "NaN spreads to every output. Check the pre-processing (a division by zero? "
                    "an empty image?) or replace them with np.nan_to_num(x)"
                )
