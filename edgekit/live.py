"""A zoo model on a video stream, annotated, in a window or into a video file (``edgekit live``,
registered by :mod:`edgekit.video_cli`).

    edgekit live face-detector --source camera://0                     # a window, if there is a display
    edgekit live face-detector --source 'synthetic://?frames=300&size=640x480' --out annotated.mp4

The stages come from :func:`stages_for`: pre-processing follows the model's manifest
``preprocess`` entry (through :mod:`edgekit.vision` when it is there, else a minimal built-in
letterbox/stretch), post-processing gives face boxes (BlazeFace) or a top-1 label. Without a
display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux, or an OpenCV built without a GUI, like
``opencv-python-headless``) the annotated stream goes to a video file instead.

>>> r = run_live("face-detector", "synthetic://?frames=4&size=160x120", show=False, out=None)
>>> r.pipeline.frames, r.detected_frames
(4, 4)
"""

from __future__ import annotations

import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple

import numpy as np

from ._errors import EdgekitError
from .pipeline import Pipeline, PipelineResult, StopPipeline

WINDOW = "edgekit live (q or Esc to quit)"


class Detection(NamedTuple):
    """A box in frame pixels (``x1, y1, x2, y2``), its score and label."""

    box: tuple[float, float, float, float]
    score: float
    label: str


def gui_backend() -> str | None:
    """The GUI toolkit OpenCV was built with (``"QT5"``, ``"GTK3"``, ``"WIN32UI"``, ``"COCOA"``), or None.

    >>> gui_backend() is None or isinstance(gui_backend(), str)
    True
    """
    import cv2

    info = cv2.getBuildInformation()
    line = re.search(r"^[ \t]*GUI:[ \t]*(\S+)", info, re.M)
    if line and line.group(1).upper() != "NONE":
        return line.group(1)
    toolkit = re.search(r"^[ \t]*(GTK\+|QT|Win32 UI|Cocoa):[ \t]*YES", info, re.M)
    return toolkit.group(1) if toolkit else None


def has_display() -> tuple[bool, str]:
    """Can ``cv2.imshow`` open a window here? ``(answer, reason)``."""
    backend = gui_backend()
    if backend is None:
        return False, "this OpenCV has no GUI support (opencv-python-headless?)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return True, f"OpenCV GUI: {backend}"


def _anchors() -> np.ndarray:
    """BlazeFace short-range anchor centres (896, 2): a 16x16 grid x 2, then an 8x8 grid x 6."""
    parts = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 1, 2)
        parts.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(parts)


def _fallback_preprocess(image_bgr: np.ndarray, spec: dict) -> tuple[np.ndarray, Any]:
    """Minimal manifest preprocessing: letterbox or stretch, colour, mean/std, NCHW."""
    import cv2

    th, tw = spec["size"]
    h, w = image_bgr.shape[:2]
    s = min(th / h, tw / w) if spec.get("resize") == "letterbox" else None
    nw, nh = (round(w * s), round(h * s)) if s else (tw, th)
    interp = cv2.INTER_AREA if spec.get("interpolation") == "area" else cv2.INTER_LINEAR
    # Shrink first, convert colour after: the conversion then touches 128x96 pixels, not 640x480.
    img = cv2.resize(image_bgr, (nw, nh), interpolation=interp)
    code = {"rgb": cv2.COLOR_BGR2RGB, "gray": cv2.COLOR_BGR2GRAY}.get(spec.get("color", "rgb"))
    img = cv2.cvtColor(img, code) if code is not None else img
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.full((th, tw, *img.shape[2:]), spec.get("pad_value", 0), np.uint8)
    canvas[top:top + nh, left:left + nw] = img
    x = (canvas.astype(np.float32) - np.float32(spec.get("mean", 0.0))) / np.float32(spec.get("std", 1.0))
    x = x[None, :, :, None] if x.ndim == 2 else x[None]
    t = SimpleNamespace(scale_x=nw / w, scale_y=nh / h, offset_x=float(left), offset_y=float(top))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), t


def _choose_preprocess(spec: dict, want: str) -> tuple[Callable, str]:
    """edgekit.vision.preprocess if it is there and works on a test frame, else the built-in one."""
    if want not in ("auto", "vision", "builtin"):
        raise ValueError(f"preprocess must be 'auto', 'vision' or 'builtin', got {want!r}")
    try:
        if want == "builtin":
            raise ImportError
        from . import vision

        probe = np.zeros((48, 64, 3), np.uint8)
        x, _ = vision.preprocess(probe, spec, color="bgr")
        if x.shape != _fallback_preprocess(probe, spec)[0].shape:
            raise ValueError(f"vision.preprocess gave shape {x.shape}")
        return (lambda img: tuple(vision.preprocess(img, spec, color="bgr"))), "edgekit.vision"
    except ImportError:
        if want == "vision":
            raise
    except Exception as exc:  # vision is there but its API is not what this adapter expects
        if want == "vision":
            raise
        warnings.warn(f"edgekit.vision did not fit the live adapter ({exc}); using the built-in "
                      "preprocessing", RuntimeWarning, stacklevel=3)
    return (lambda img: _fallback_preprocess(img, spec)), "built-in"


@dataclass
class Stages:
    """The pre/post-processing and drawing functions for one model, ready for :class:`Pipeline`."""

    preprocess: Callable
    postprocess: Callable
    draw: Callable
    backend: str


def stages_for(name: str, *, preprocess: str = "auto") -> Stages:
    """Stages for a zoo model: ``detection`` (BlazeFace boxes) or ``classification`` (top-1 label).

    ``preprocess``: ``"vision"`` (:func:`edgekit.vision.preprocess`), ``"builtin"``, or ``"auto"``
    (vision when it is importable and fits, else built-in).

    >>> stages_for("face-detector").backend in ("edgekit.vision", "built-in")
    True
    """
    from . import zoo

    if not zoo.is_zoo_name(name):
        raise EdgekitError(f"edgekit live needs a zoo model (its manifest says how to pre- and post-process); "
                           f"got {name!r}. Zoo models: {', '.join(zoo.names())}")
    entry = zoo.entry(name)
    spec = dict(entry.preprocess)
    prep, backend = _choose_preprocess(spec, preprocess)

    def pre(frame):
        x, frame.meta["transform"] = prep(frame.image)  # the transform maps boxes back to the frame
        return x

    kind = entry.postprocess.get("type") if entry.postprocess else entry.task
    if kind == "blazeface_ssd":
        anchors, thresh = _anchors(), entry.postprocess["decode"]["min_score_thresh"]
        size = np.array(entry.postprocess["anchors"]["input_size"][::-1], np.float32)  # (w, h)

        def postprocess(outputs, frame) -> list[Detection]:
            # Minimal decoding until NMS lands in edgekit: the single best-scoring anchor.
            regressors, scores = outputs[0][0], outputs[1][0, :, 0]
            i = int(scores.argmax())
            score = float(1 / (1 + np.exp(-np.clip(scores[i], -100, 100))))  # sigmoid, clipped as MediaPipe does
            if score < thresh:
                return []
            centre = (anchors[i] + regressors[i, :2] / size) * size  # in model-input pixels
            half = regressors[i, 2:4] / 2
            t = frame.meta["transform"]
            x1, y1 = (centre - half - (t.offset_x, t.offset_y)) / (t.scale_x, t.scale_y)
            x2, y2 = (centre + half - (t.offset_x, t.offset_y)) / (t.scale_x, t.scale_y)
            return [Detection((float(x1), float(y1), float(x2), float(y2)), score, "face")]

        return Stages(pre, postprocess, _draw_boxes, backend)
    if entry.task == "classification":
        labels = zoo.labels(name)

        def classify(outputs, frame) -> list[Detection]:
            logits = outputs[0][0].astype(np.float64)
            p = np.exp(logits - logits.max())
            i = int(p.argmax())
            h, w = frame.image.shape[:2]
            return [Detection((0.0, 0.0, float(w), float(h)), float(p[i] / p.sum()), labels[i] if labels else str(i))]

        return Stages(pre, classify, _draw_label, backend)
    raise EdgekitError(f"edgekit live knows detection (BlazeFace) and classification models; "
                       f"{name!r} is a {entry.task!r} model")


def _draw_boxes(image: np.ndarray, detections: list[Detection]) -> None:
    import cv2

    for d in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
        cv2.putText(image, f"{d.label} {d.score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 255, 0), 1, cv2.LINE_AA)


def _draw_label(image: np.ndarray, detections: list[Detection]) -> None:
    import cv2

    for d in detections:
        cv2.putText(image, f"{d.label} {d.score:.2f}", (8, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2,
                    cv2.LINE_AA)


@dataclass
class LiveResult:
    """The pipeline's result, where the annotated video went, and how often something was found."""

    pipeline: PipelineResult
    out: str | None
    shown: bool
    backend: str
    detected_frames: int

    def to_dict(self) -> dict:
        return {"pipeline": self.pipeline.to_dict(), "out": self.out, "shown": self.shown,
                "backend": self.backend, "detected_frames": self.detected_frames}


def run_live(model: str, source: str, *, out: str | os.PathLike | None = None, show: bool | None = None,
             max_frames: int | None = None, drop_frames: bool | None = None, threads: int = 1,
             mode: str = "pipelined", pin_cores: bool = False) -> LiveResult:
    """Run a zoo model on ``source``; show the annotated frames (``show=None``: if a display
    exists) and/or write them to ``out`` (.mp4 or .avi). ``threads``: ONNX Runtime intra-op
    threads (1 leaves a core for capture and drawing); ``pin_cores``: see :class:`Pipeline`."""
    import cv2

    from .model import load
    from .video import FOURCCS, VideoSource, VideoSourceError, open_writer

    if out is not None and Path(out).suffix.lower() not in FOURCCS:  # fail before the first frame, not in it
        raise VideoSourceError(f"--out must end in .mp4 or .avi (the codecs OpenCV writes here), got {str(out)!r}")
    show = has_display()[0] if show is None else show
    stages, net = stages_for(model), load(model, threads=threads)
    state = {"writer": None, "t": None, "fps": 0.0, "found": 0}

    def sink(detections, frame) -> None:
        now = time.perf_counter()
        if state["t"] is not None:  # the FPS on screen: a moving average of 1 / (time between frames)
            rate = 1 / max(now - state["t"], 1e-6)
            state["fps"] = 0.9 * state["fps"] + 0.1 * rate if state["fps"] else rate
        state["t"] = now
        state["found"] += bool(detections)
        img = frame.image
        stages.draw(img, detections)
        cv2.putText(img, f"{state['fps']:.1f} FPS", (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 255, 255), 2, cv2.LINE_AA)
        if out is not None:
            if state["writer"] is None:
                state["writer"] = open_writer(out, src.fps, (img.shape[1], img.shape[0]))
            state["writer"].write(img)
        if show:
            cv2.imshow(WINDOW, img)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                raise StopPipeline

    with VideoSource(source, decode_threads=1) as src:  # one decoder thread: a core stays with the model
        pipe = Pipeline(src, preprocess=stages.preprocess, infer=net, postprocess=stages.postprocess, sink=sink,
                        drop_frames=drop_frames, pin_cores=pin_cores)
        try:
            result = pipe.run(max_frames, mode=mode)
        finally:
            if state["writer"] is not None:
                state["writer"].release()
            if show:
                cv2.destroyAllWindows()
    return LiveResult(result, str(out) if out is not None else None, show, stages.backend, state["found"])
