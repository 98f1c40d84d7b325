"""Calibration data for static quantization: the one reader :func:`edgekit.deploy.quantization.quantize`
and the NPU preparation (:mod:`edgekit.deploy.qdq`) both hand to ONNX Runtime.

ONNX Runtime's static quantizers pull batches from a ``CalibrationDataReader`` (``get_next()``
returns ``{input name: batch}`` until ``None``). :func:`calibration_reader` turns what a user gives
(an array, ``"digits"``, a folder of images, a zoo name, or a reader of their own) into one,
checked against the model's input first.

>>> from edgekit import load
>>> r = calibration_reader("digits", load("digits-cnn"))
>>> r.get_next()["input"].shape
(32, 1, 8, 8)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import QuantizationError


def default_data(model) -> Any:
    """What to calibrate (and evaluate) a model on when nothing is given: digits for digits-shaped
    inputs, else the bundled photos through the zoo model's own preprocess."""
    from ..runtime import zoo

    spec = model.inputs[0]
    if tuple(spec.shape[1:]) == (1, 8, 8):
        return "digits"
    pre = zoo.entry(model.name).preprocess if zoo.is_zoo_name(model.name) else {}
    if pre.get("mean") is not None:
        return pre
    raise QuantizationError(f"{model.name} needs calibration data: pass calibration_data= an array of inputs shaped "
                            f"{spec}, a folder of images, 'digits', or a zoo name whose preprocess fits this model")


class ArrayReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over an array, in batches."""

    def __init__(self, name: str, x: np.ndarray, batch_size: int = 32):
        # equal batches only: ORT's histogram calibrators (entropy, percentile) stack them, so the
        # ragged last batch is dropped (at most batch_size - 1 samples)
        batch_size = min(batch_size, len(x))
        self.name, self.x, self.batch_size, self.i = name, x[:len(x) // batch_size * batch_size], batch_size, 0

    def get_next(self) -> dict | None:
        if self.i >= len(self.x):
            return None
        self.i += self.batch_size
        return {self.name: self.x[self.i - self.batch_size:self.i]}

    def rewind(self) -> None:
        self.i = 0


def calibration_reader(data: Any, model) -> Any:
    """A reader as given (anything with ``get_next``), or an :class:`ArrayReader` over ``data`` (see
    :func:`edgekit.deploy.evaluation.load_dataset`; ``None``: :func:`default_data`), checked against
    the input of ``model`` (a loaded :class:`~edgekit.Model`). A fixed batch dimension sets the batch size."""
    from .evaluation import load_dataset

    if hasattr(data, "get_next"):
        return data
    x = load_dataset(default_data(model) if data is None else data, model, split="train")[0]
    spec = model.inputs[0]
    if x.ndim != len(spec.shape) or any(isinstance(d, int) and d != n for d, n in zip(spec.shape[1:], x.shape[1:])):
        raise QuantizationError(f"calibration data shaped {x.shape} does not fit input '{spec.name}' {spec} "
                                "of the model: pass samples stacked on the first axis, preprocessed as for inference")
    fixed = spec.shape[0]
    return ArrayReader(spec.name, x, fixed if isinstance(fixed, int) else 32)
