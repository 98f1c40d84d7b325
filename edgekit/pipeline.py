"""A real-time pipeline: capture, pre-processing, inference and post-processing overlapped in threads.

Each stage runs in its own thread and hands frames on through a bounded ``queue.Queue``, so while
the model works on frame n, frame n+1 is being pre-processed and frame n+2 read. Threads overlap
for real here, despite the GIL: ONNX Runtime releases the GIL for the whole of
``InferenceSession.run``, and OpenCV and numpy release it inside their C loops. The ``sink``
(draw, show, write) runs in the calling thread, because GUI toolkits want the main thread and
Ctrl-C arrives there.

Stages are plain callables, each given what the one before returned:

    preprocess(frame) -> x          frame: a video.Frame (.image BGR uint8, .index, .meta scratch dict)
    infer(x) -> y                   e.g. a Model: infer=model
    postprocess(y, frame) -> out
    sink(out, frame) -> None        optional; raise StopPipeline to end the run early

``drop_frames=True`` keeps latency bounded when the source outruns the model (a camera does):
when the first queue is full, the oldest waiting frame is dropped for the new one, and counted.
The default drops only for live sources (``source.live``); a file is processed frame by frame.
``mode`` picks how the stages share the CPUs:

- ``"pipelined"``: one thread per stage, as above (the textbook pipeline);
- ``"overlap"``: the model in a thread of its own, capture, pre/post-processing and the sink
  in the calling thread. Two threads instead of five: fewer hand-offs of frames and of the GIL,
  which is what counts when there are as few cores as here (2; ``benchmarks/pipeline.py``
  measures both);
- ``"sequential"``: the same stages one after another in one thread, for comparison.

>>> p = Pipeline("synthetic://?frames=8&size=64x48", preprocess=lambda f: f.image.mean(),
...              infer=lambda x: x * 2, keep_outputs=True)
>>> r = p.run()
>>> r.frames, r.dropped, r.stop_reason, len(r.outputs)
(8, 0, 'end of source', 8)
>>> r.outputs == p.run(mode="sequential").outputs
True
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ._errors import EdgekitError
from .video import Frame, VideoSource

SCHEMA = "edgekit.pipeline/1"
MODES = ("pipelined", "overlap", "sequential")


class PipelineError(EdgekitError, RuntimeError):
    """A stage raised; ``stage`` and ``frame_index`` say where, the original is ``__cause__``."""

    def __init__(self, message: str, stage: str, frame_index: int | None):
        super().__init__(message)
        self.stage, self.frame_index = stage, frame_index


class StopPipeline(Exception):
    """Raise from any stage (e.g. the sink, when the user presses q) to end the run cleanly."""


@dataclass(frozen=True)
class StageStats:
    """Time spent inside one stage per frame (queue waits excluded), in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> "StageStats":
        if not seconds:
            return cls(0, *[float("nan")] * 4)
        ms = np.asarray(seconds) * 1e3
        return cls(len(ms), float(ms.mean()), float(np.percentile(ms, 50)), float(np.percentile(ms, 90)),
                   float(ms.max()))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PipelineResult:
    """What a run did: frames through every stage, drops, FPS, per-stage and end-to-end latency.

    ``latency`` is per frame, from the moment the frame was read to the end of the last stage
    (queue waits included); ``frame_latency_ms`` holds the raw samples, in completion order.
    """

    mode: str
    frames: int
    captured: int
    dropped: int
    wall_s: float
    fps: float
    stages: dict[str, StageStats]
    latency: StageStats
    stop_reason: str
    frame_indices: list[int] = field(default_factory=list)
    frame_latency_ms: list[float] = field(default_factory=list)
    outputs: list[Any] | None = None

    def to_dict(self) -> dict:
        """JSON-ready (``outputs`` left out: they can be anything)."""
        d = {k: v for k, v in asdict(self).items() if k != "outputs"}
        d["stages"] = {k: s.to_dict() for k, s in self.stages.items()}
        d["latency"] = self.latency.to_dict()
        return {"schema": SCHEMA, **d}

    def __str__(self) -> str:
        lines = [f"{self.mode}: {self.frames} frames in {self.wall_s:.2f} s = {self.fps:.1f} FPS, "
                 f"{self.dropped} dropped of {self.captured} read ({self.stop_reason})",
                 f"  {'stage':<12}{'n':>6}{'mean ms':>10}{'p50 ms':>9}{'p90 ms':>9}"]
        for name, s in [*self.stages.items(), ("end-to-end", self.latency)]:
            lines.append(f"  {name:<12}{s.n:>6}{s.mean_ms:>10.3f}{s.p50_ms:>9.3f}{s.p90_ms:>9.3f}")
        return "\n".join(lines)


def _as_frames(source: Iterable) -> Iterable[Frame]:
    """Frames from a VideoSource, or from any iterable of Frames or images."""
    for i, item in enumerate(source):
        yield item if isinstance(item, Frame) else Frame(i, float(i), item)


class Pipeline:
    """Capture -> preprocess -> infer -> postprocess -> sink, overlapped (see the module docstring).

    ``source`` is a URI (opened and closed by each ``run``), a :class:`VideoSource`, or any iterable
    of frames. ``queue_size`` bounds every queue between stages, and so the frames in flight.
    ``pin_cores`` (Linux): the inference thread gets a CPU of its own, the other stages share the
    rest, so decoding and drawing never preempt the model (the calling thread is left alone).
    """

    def __init__(self, source: str | os.PathLike | Iterable, *, preprocess: Callable | None = None,
                 infer: Callable | None = None, postprocess: Callable | None = None,
                 sink: Callable | None = None, drop_frames: bool | None = None, queue_size: int = 2,
                 keep_outputs: bool = False, pin_cores: bool = False):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.source, self.sink = source, sink
        self.preprocess, self.infer, self.postprocess = preprocess, infer, postprocess
        self.drop_frames, self.queue_size, self.keep_outputs = drop_frames, queue_size, keep_outputs
        self.pin_cores = pin_cores

    def _stages(self) -> list[tuple[str, Callable[[Any, Frame], Any]]]:
        """Each stage as fn(value, frame) -> value, with the defaults filled in."""
        pre, inf, post = self.preprocess, self.infer, self.postprocess
        return [("preprocess", (lambda v, f: pre(f)) if pre else (lambda v, f: f.image)),
                ("infer", (lambda v, f: inf(v)) if inf else (lambda v, f: v)),
                ("postprocess", (lambda v, f: post(v, f)) if post else (lambda v, f: v))]

    def run(self, max_frames: int | None = None, *, mode: str = "pipelined") -> PipelineResult:
        """Process up to ``max_frames`` frames read from the source (all when ``None``).

        Ends at the end of the source, on :class:`StopPipeline`, or on Ctrl-C (the result so far
        is returned, ``stop_reason`` says which); a stage that raises ends it with a
        :class:`PipelineError` naming the stage and the frame.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        opened = isinstance(self.source, (str, os.PathLike))
        source = VideoSource(self.source) if opened else self.source
        drop = self.drop_frames if self.drop_frames is not None else bool(getattr(source, "live", False))
        from ._threads import Run, core_plan

        run = Run(self._stages(), self.sink, self.keep_outputs)
        frames = itertools.islice(_as_frames(source), max_frames)
        try:
            plan = core_plan() if self.pin_cores and mode != "sequential" else None
            if mode == "sequential":
                run.sequential(frames)
            elif mode == "overlap":
                run.overlap(frames, drop, self.queue_size, plan)
            else:
                run.pipelined(frames, drop, self.queue_size, plan)
        finally:
            if opened:
                source.close()
        return run.result(mode, max_frames)
