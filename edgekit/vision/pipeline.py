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
from typing import Any, Callable, Iterable


from .scheduler import Run, core_plan
from .._errors import ConfigError, PipelineError  # noqa: F401 (PipelineError: a public name here)
from .stages import SCHEMA, PipelineResult, StageStats, StopPipeline  # noqa: F401 (the public names)
from .video import Frame, VideoSource

MODES = ("pipelined", "overlap", "sequential")


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
            raise ConfigError(f"queue_size must be >= 1, got {queue_size}")
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
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        opened = isinstance(self.source, (str, os.PathLike))
        source = VideoSource(self.source) if opened else self.source
        drop = self.drop_frames if self.drop_frames is not None else bool(getattr(source, "live", False))

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
