"""Photos in, answers out: a zoo model's pre-processing, softmax / top-k, and the whole round trip.

:func:`preprocess` chains the operations of :mod:`edgekit.vision.image` (resize, crop or letterbox,
colour order, normalisation, layout) as a zoo manifest's ``preprocess`` entry says, and returns the
:class:`~edgekit.vision.image.Transform` that maps model-input pixels back to the photo. :func:`run`
does the whole round trip for a zoo model (classification and detection; see
:mod:`edgekit.vision.detect` for box decoding and NMS). The image operations are re-exported here, so
``from edgekit.vision.preprocessing import letterbox`` works as well.

>>> from edgekit.runtime.datasets import sample_image
>>> x, t = preprocess(sample_image("coffee"), "face-detector")   # 400x600 photo -> 128x128 letterbox
>>> x.shape, x.dtype.name, t.offset_y
((1, 3, 128, 128), 'float32', 21.0)
>>> run("face-detector", sample_image("astronaut")).detections[0].score > 0.8
True
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from .._errors import InputError, ZooError
from .image import (COLORS, INTERPOLATIONS, Transform, _check_image, _size, batch, center_crop, letterbox, load_image,
                    normalize, resize, to_nchw, to_nhwc, unletterbox_boxes)

__all__ = ["preprocess", "Preprocessed", "softmax", "topk", "run", "recipe", "Recipe", "ClassificationResult", "DetectionResult",
           # re-exported from edgekit.vision.image
           "Transform", "load_image", "resize", "center_crop", "letterbox", "unletterbox_boxes", "normalize",
           "to_nchw", "to_nhwc", "batch", "COLORS", "INTERPOLATIONS"]

RESIZE_MODES = ("letterbox", "short_side_then_center_crop", "stretch")


class Preprocessed(NamedTuple):
    """The model input and where its pixels came from; unpacks as ``x, transform``."""

    input: np.ndarray
    transform: Transform


def _spec(spec: dict | str | Any) -> dict:
    if isinstance(spec, str):
        from ..runtime import zoo

        return dict(zoo.entry(spec).preprocess)
    return dict(getattr(spec, "preprocess", spec))  # a ZooEntry or a dict


def _convert_color(img: np.ndarray, have: str, want: str) -> np.ndarray:
    import cv2

    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return img if want == "gray" else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)  # grey: RGB == BGR
    if want == "gray":
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if have == "rgb" else cv2.COLOR_BGR2GRAY)
    return img if want == have else img[:, :, ::-1]


def _invert(img: np.ndarray, how: bool | str) -> np.ndarray:
    if how == "auto":  # ink on paper: a bright border means a bright background, so invert
        border = np.concatenate([img[0].ravel(), img[-1].ravel(), img[:, 0].ravel(), img[:, -1].ravel()])
        how = bool(np.median(border) > 127)
    return 255 - img if how else img


def preprocess(image: np.ndarray, spec: dict | str, *, color: str = "rgb") -> Preprocessed:
    """Turn a uint8 photo (in ``color`` order) into a model input, following a manifest ``preprocess`` dict.

    ``spec`` (or a zoo name): ``size`` (height, width); ``resize``: ``"letterbox"`` (with
    ``pad_value``), ``"short_side_then_center_crop"`` (with ``short_side``) or ``"stretch"``;
    ``interpolation``; ``color`` (``rgb``/``bgr``/``gray``); ``invert`` (true/false/``"auto"``:
    dark ink on bright paper becomes bright ink); then ``scale`` (multiply), then ``mean``/``std``;
    ``layout`` ``NCHW`` (default) or ``NHWC``. Returns float32 with a batch axis of 1, and the transform.

    >>> x, t = preprocess(np.zeros((480, 640, 3), np.uint8), "efficientnet-lite0")
    >>> x.shape, round(t.scale_x, 4), t.offset_x
    ((1, 3, 224, 224), 0.5328, -58.0)
    """
    spec = _spec(spec)
    img = _check_image(image)
    if color not in COLORS[:2]:
        raise InputError(f"color (the order of the image given) must be 'rgb' or 'bgr', got {color!r}")
    want, pad = spec.get("color", "rgb"), spec.get("pad_value", 0)
    # Resize first, convert colour after: on a 640x480 frame the conversion then touches 128x128
    # pixels, not 640x480. Bit-identical, because rgb <-> bgr only reorders channels and resizing
    # works per channel. A grey target (a weighted sum, rounded), inverting (its "auto" looks at the
    # photo's border; the padding must not be inverted) and grey photos still convert first.
    early = want == "gray" or bool(spec.get("invert")) or img.ndim == 2 or img.shape[2] == 1
    if early:
        img = _convert_color(img, color, want)
        if spec.get("invert"):
            img = _invert(img, spec["invert"])
    elif want != color and np.ndim(pad) == 1 and len(pad) == 3:
        pad = pad[::-1]  # the pad colour is in the model's order; the canvas is still in the photo's
    size = _size(spec.get("size", img.shape[:2]))
    mode, interp = spec.get("resize", "stretch"), spec.get("interpolation", "linear")
    h, w = img.shape[:2]
    if mode == "letterbox":
        img, t = letterbox(img, size, pad, interp)
    elif mode == "short_side_then_center_crop":
        s = spec.get("short_side", min(size)) / min(h, w)
        img = resize(img, (round(h * s), round(w * s)), interp)
        t = Transform(img.shape[1] / w, img.shape[0] / h, 0.0, 0.0, (h, w), img.shape[:2])
        rh, rw = img.shape[:2]
        img = center_crop(img, size)
        t = t.then(Transform(1.0, 1.0, -float((rw - size[1]) // 2), -float((rh - size[0]) // 2), (rh, rw), size))
    elif mode in ("stretch", "plain", None):
        img = resize(img, size, interp) if img.shape[:2] != size else img
        t = Transform(size[1] / w, size[0] / h, 0.0, 0.0, (h, w), size)
    else:
        raise InputError(f"preprocess: unknown resize {mode!r}; expected one of {RESIZE_MODES}")
    img = img if early else _convert_color(img, color, want)
    x = img * np.float32(spec["scale"]) if "scale" in spec else img
    if "mean" in spec or "std" in spec:
        x = normalize(x, spec.get("mean", 0.0), spec.get("std", 1.0))
    x = x.astype(np.float32, copy=False)
    layout = spec.get("layout", "NCHW").upper()
    if layout not in ("NCHW", "NHWC"):
        raise InputError(f"preprocess: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    x = to_nchw(x) if layout == "NCHW" else np.ascontiguousarray((x[:, :, None] if x.ndim == 2 else x)[None])
    return Preprocessed(x, t)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities from logits, stable for large values.

    >>> softmax(np.array([1000.0, 1000.0])).tolist()
    [0.5, 0.5]
    """
    z = logits - np.max(logits, axis=axis, keepdims=True)  # subtract the max: exp() cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def topk(probs: np.ndarray, labels: Sequence[str] | None = None, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ``(label, probability)`` pairs, best first; ties keep class order.

    >>> topk(np.array([0.1, 0.6, 0.3]), ["cat", "dog", "owl"], k=2)
    [('dog', 0.6), ('owl', 0.3)]
    """
    p = np.asarray(probs)
    if p.ndim != 1:
        raise InputError(f"topk expects one image's probabilities (1-D), got shape {p.shape}; use probs[0]")
    if labels is not None and len(labels) != p.size:
        raise InputError(f"{len(labels)} labels for {p.size} classes; the model and the labels do not match")
    idx = np.argsort(-p, kind="stable")[:k]
    return [(labels[i] if labels is not None else str(i), float(p[i])) for i in idx]


SCHEMA = "edgekit.vision/1"
# Preprocessing steps a manifest entry implies in words only (its "note"); every recipe applies them.
_SPEC_EXTRAS = {"digits-cnn": {"invert": "auto"}}


@dataclass(frozen=True)
class Recipe:
    """A zoo model's pre- and post-processing, the one copy :func:`run` and ``edgekit live`` share.

    ``inputs`` turns a photo into the model input; ``outputs`` names the model outputs in the
    order ``probabilities``/``detections`` expect them (the manifest's, whatever the file's).

    >>> from edgekit import datasets, load
    >>> r = recipe("face-detector")
    >>> x, t = r.inputs(datasets.sample_image("astronaut"))
    >>> [d.score > 0.8 for d in r.detections(load("face-detector")(x, r.outputs), t)]
    [True]
    """

    name: str
    task: str  # "classification" | "detection"
    preprocess: dict
    postprocess: dict
    outputs: list[str]
    labels: list[str] | None
    anchors: np.ndarray | None = None  # BlazeFace's, computed once

    def inputs(self, image: np.ndarray, color: str = "rgb") -> Preprocessed:
        """The model input for a uint8 photo in ``color`` order, and its transform."""
        return preprocess(image, self.preprocess, color=color)

    def probabilities(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of one image: softmax of the first output's first row."""
        return softmax(np.asarray(outputs[0][0], np.float64))

    def detections(self, outputs: Sequence[np.ndarray], transform: Transform, *,
                   min_score: float | None = None) -> list:
        """Decoded, suppressed detections mapped back to the photo's pixels (boxes ``x1, y1, x2, y2``)."""
        from .detect import Detection, blazeface

        found = blazeface(outputs, self.postprocess, min_score=min_score, anchors=self.anchors)
        boxes = unletterbox_boxes(np.array([d.box for d in found]).reshape(-1, 4), transform, normalized=True)
        size = np.array(transform.target_size[::-1])  # (width, height): keypoints are x, y fractions of the input
        return [Detection(tuple(map(float, b)), d.score, d.label,
                          tuple(map(tuple, transform.to_source(np.array(d.keypoints).reshape(-1, 2) * size).tolist())))
                for b, d in zip(boxes, found)]


@functools.cache
def recipe(name: str) -> Recipe:
    """The :class:`Recipe` of a zoo classification or detection model (built once per name)."""
    from ..runtime import zoo

    if not zoo.is_zoo_name(name):
        raise ZooError(f"{name!r} is not a zoo model, so its pre- and post-processing are unknown "
                       f"(zoo models: {', '.join(zoo.names())})")
    e = zoo.entry(name)
    if e.task not in ("classification", "detection") or not e.preprocess:
        raise ZooError(f"{name} is a {e.task!r} model (constant random weights, for timing only): its outputs "
                       "mean nothing. Classify with efficientnet-lite0, detect faces with face-detector")
    anchors = None
    if e.task == "detection":
        if e.postprocess.get("type") != "blazeface_ssd":
            raise ZooError(f"{name}: no decoder for postprocess type {e.postprocess.get('type')!r} "
                           "(edgekit has blazeface_ssd)")
        from .detect import ssd_anchors

        anchors = ssd_anchors(e.postprocess["anchors"])
    return Recipe(name, e.task, {**_SPEC_EXTRAS.get(name, {}), **e.preprocess}, dict(e.postprocess or {}),
                  [o["name"] for o in e.outputs], zoo.labels(name), anchors)


@dataclass
class ClassificationResult:
    """The ``top`` most probable ``(label, probability)`` pairs for one image, best first."""

    model: str
    top: list[tuple[str, float]]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "task": "classification", "model": self.model,
                "top": [{"label": label, "probability": p} for label, p in self.top]}

    def draw(self, frame: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """The top-1 label written on a BGR frame."""
        from .detect import draw_label

        return draw_label(frame, f"{self.top[0][0]} {self.top[0][1]:.2f}", (0, 0), inplace=inplace)

    def __str__(self) -> str:
        return f"{self.model}: " + ", ".join(f"{label} ({p:.2f})" for label, p in self.top)


@dataclass
class DetectionResult:
    """Detections in the photo's pixels (boxes ``x1, y1, x2, y2``), best score first."""

    model: str
    detections: list  # of edgekit.vision.detect.Detection
    image_size: tuple[int, int]  # (height, width) of the photo
    labels: list[str] | None = None

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "task": "detection", "model": self.model, "image_size": list(self.image_size),
                "detections": [d.to_dict(self.labels) for d in self.detections]}

    def draw(self, frame: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """Boxes, keypoints and scores drawn on a BGR frame of the photo's size."""
        from .detect import draw_detections

        return draw_detections(frame, self.detections, self.labels, inplace=inplace)

    def __str__(self) -> str:
        rows = [f"  {self.labels[d.label] if self.labels else d.label} {d.score:.2f} at "
                f"({', '.join(f'{v:.0f}' for v in d.box)})" for d in self.detections]
        return "\n".join([f"{self.model}: {len(self.detections)} detection(s)", *rows])


def run(model: Any, image: str | os.PathLike | np.ndarray, *, top: int = 5, min_score: float | None = None,
        like: str | None = None, color: str = "rgb") -> ClassificationResult | DetectionResult:
    """Preprocess, infer and post-process one photo as the zoo manifest says.

    ``model``: a zoo name, an ``.onnx`` path or a loaded :class:`~edgekit.Model`; ``like``: the zoo
    model whose pre/post-processing a file shares (e.g. your quantized copy). ``image``: a path,
    or a uint8 array in ``color`` order. Detections come back in the photo's pixels.

    >>> from edgekit.runtime.datasets import sample_images
    >>> print(run("face-detector", sample_images()["astronaut"]))
    face-detector: 1 detection(s)
      face 0.92 at (..., ..., ..., ...)
    """
    from ..runtime import zoo
    from ..runtime.model import Model, load

    name = like or (model.name if isinstance(model, Model) else str(model))
    if not zoo.is_zoo_name(name):
        raise ZooError(f"{name!r} is not a zoo model, so its pre- and post-processing are unknown: pass "
                       f"like=NAME, the zoo model it shares them with ({', '.join(zoo.names())})")
    r = recipe(name)
    m = model if isinstance(model, Model) else load(model)
    if isinstance(image, (str, os.PathLike)):
        image, color = load_image(image, "rgb"), "rgb"
    x, t = r.inputs(image, color)
    outputs = m(x, r.outputs)
    if r.task == "classification":
        return ClassificationResult(m.name, topk(r.probabilities(outputs), r.labels, top))
    return DetectionResult(m.name, r.detections(outputs, t, min_score=min_score), image.shape[:2], r.labels)
