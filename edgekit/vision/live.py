"""A zoo model on a video stream, annotated, in a window or into a video file (``edgekit live``,
registered by :mod:`edgekit.cli.video`).

    edgekit live face-detector --source camera://0                     # a window, if there is a display
    edgekit live face-detector --source 'synthetic://?frames=300&size=640x480' --out annotated.mp4

The stages come from :func:`stages_for`: pre-processing follows the model's manifest
``preprocess`` entry (:func:`edgekit.vision.preprocessing.preprocess`), post-processing gives faces with their
keypoints (:func:`edgekit.vision.detect.blazeface`, NMS included) or a top-1 label. Without a
display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux, or an OpenCV built without a GUI, like
``opencv-python-headless``) the annotated stream goes to a video file instead.

>>> r = run_live("face-detector", "synthetic://?frames=4&size=160x120", show=False, out=None)
>>> r.pipeline.frames, r.detected_frames
(4, 4)
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import detect

from . import preprocessing as vision
from .._errors import EdgekitError
from .detect import Detection
from .pipeline import Pipeline, PipelineResult, StopPipeline

WINDOW = "edgekit live (q or Esc to quit)"


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


@dataclass
class Stages:
    """The pre/post-processing and drawing functions for one model, ready for :class:`Pipeline`."""

    preprocess: Callable
    postprocess: Callable
    draw: Callable
    outputs: list[str]  # the model outputs postprocess expects, in its order
    backend: str


def stages_for(name: str) -> Stages:
    """Stages for a zoo model: ``detection`` (BlazeFace faces) or ``classification`` (top-1 label),
    from :func:`edgekit.vision.preprocessing.recipe`, so a frame gives what ``vision.run`` gives.

    Detections come back in the frame's pixels, as :class:`edgekit.vision.detect.Detection`.

    >>> from edgekit.vision.video import VideoSource
    >>> stages, frame = stages_for("face-detector"), VideoSource("synthetic://?frames=1").read()
    >>> (face,) = stages.postprocess(__import__("edgekit").load("face-detector")(stages.preprocess(frame)), frame)
    >>> face.score > 0.8, len(face.keypoints)
    (True, 6)
    """
    from ..runtime import zoo

    if not zoo.is_zoo_name(name):
        raise EdgekitError(f"edgekit live needs a zoo model (its manifest says how to pre- and post-process); "
                           f"got {name!r}. Zoo models: {', '.join(zoo.names())}")
    r = vision.recipe(name)  # the same pre/post-processing as vision.run, decoded once

    def pre(frame):
        # Frames come from OpenCV, so BGR; the transform maps boxes back to the frame.
        x, frame.meta["transform"] = r.inputs(frame.image, "bgr")
        return x

    if r.task == "detection":
        def postprocess(outputs, frame) -> list[Detection]:
            return r.detections(outputs, frame.meta["transform"])

        def draw(image: np.ndarray, detections: list[Detection]) -> None:
            detect.draw_detections(image, detections, r.labels, inplace=True)

        return Stages(pre, postprocess, draw, r.outputs, "edgekit.vision.preprocessing")

    def classify(outputs, frame) -> list[Detection]:
        p = r.probabilities(outputs)
        i = int(p.argmax())
        h, w = frame.image.shape[:2]
        return [Detection((0.0, 0.0, float(w), float(h)), float(p[i]), i)]  # the whole frame

    def caption(image: np.ndarray, detections: list[Detection]) -> None:
        for d in detections:  # below the FPS counter
            label = r.labels[d.label] if r.labels else str(d.label)
            detect.draw_label(image, f"{label} {d.score:.2f}", (0, 44), inplace=True)

    return Stages(pre, classify, caption, r.outputs, "edgekit.vision.preprocessing")


@dataclass
class LiveResult:
    """The pipeline's result, where the annotated video went, and how often something was found."""

    pipeline: PipelineResult
    out: str | None
    shown: bool
    backend: str
    detected_frames: int

    def to_dict(self) -> dict:
        return {"schema": "edgekit.live/1", "pipeline": self.pipeline.to_dict(), "out": self.out,
                "shown": self.shown, "backend": self.backend, "detected_frames": self.detected_frames}

    def __str__(self) -> str:
        found = f"{self.detected_frames}/{self.pipeline.frames} frames with a detection (pre-processing: {self.backend})"
        return "\n".join([str(self.pipeline), found, *([f"wrote {self.out}"] if self.out else [])])


def run_live(model: str, source: str, *, out: str | os.PathLike | None = None, show: bool | None = None,
             max_frames: int | None = None, drop_frames: bool | None = None, threads: int = 1,
             mode: str = "overlap", pin_cores: bool = False) -> LiveResult:
    """Run a zoo model on ``source``; show the annotated frames (``show=None``: if a display
    exists) and/or write them to ``out`` (.mp4 or .avi). ``threads``: ONNX Runtime intra-op
    threads (1 leaves a core for capture and drawing); ``mode`` and ``pin_cores``: see :class:`Pipeline`
    (``"overlap"``, the model in a thread of its own, was the fastest on 2 cores: benchmarks/pipeline.py)."""
    import cv2

    from ..runtime.model import load
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
        detect.draw_fps(img, state["fps"], inplace=True)
        if out is not None:
            if state["writer"] is None:
                state["writer"] = open_writer(out, src.fps, (img.shape[1], img.shape[0]))
            state["writer"].write(img)
        if show:
            cv2.imshow(WINDOW, img)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                raise StopPipeline

    with VideoSource(source, decode_threads=1) as src:  # one decoder thread: a core stays with the model
        infer = functools.partial(net.run, output_names=stages.outputs)  # in the order postprocess expects
        pipe = Pipeline(src, preprocess=stages.preprocess, infer=infer, postprocess=stages.postprocess, sink=sink,
                        drop_frames=drop_frames, pin_cores=pin_cores)
        try:
            result = pipe.run(max_frames, mode=mode)
        finally:
            if state["writer"] is not None:
                state["writer"].release()
            if show:
                cv2.destroyAllWindows()
    return LiveResult(result, str(out) if out is not None else None, show, stages.backend, state["found"])
