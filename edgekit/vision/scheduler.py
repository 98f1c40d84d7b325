"""How :class:`edgekit.vision.pipeline.Pipeline` runs its stages: one thread, a thread per stage, or the
model in a thread of its own (``mode`` ``sequential``, ``pipelined``, ``overlap``); timings, drops,
the stop flag and the first failure of one run.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import warnings
from typing import Any, Iterable

from .._errors import PipelineError
from .stages import PipelineResult, StageStats, StopPipeline
from .video import Frame

_END = object()  # end-of-stream marker, forwarded stage to stage
_POLL_S = 0.05  # how often a waiting thread looks at the stop flag (a get() returns at once on data)


def core_plan() -> tuple[set, set] | None:
    """pin_cores: the last CPU for the inference thread, the others for the other stages."""
    if not hasattr(os, "sched_setaffinity"):
        warnings.warn("pin_cores needs os.sched_setaffinity (Linux); running unpinned", RuntimeWarning, stacklevel=4)
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[-1]}, set(cpus[:-1])) if len(cpus) >= 2 else None


class Run:
    """The state of one run: timings, outputs, the stop flag, the first failure."""

    def __init__(self, stages, sink, keep_outputs):
        self.stages, self.sink, self.keep = stages, sink, keep_outputs
        self.times: dict[str, list[float]] = {n: [] for n in ["capture", *(s[0] for s in stages)]}
        if sink is not None:
            self.times["sink"] = []
        self.latency, self.indices, self.outputs = [], [], []  # seconds, frame indices, stage outputs
        self.captured = self.dropped = 0
        self.reason = "end of source"
        self.failure: tuple[str, int | None, BaseException] | None = None
        self.stop = threading.Event()
        self.t_start = self.t_end = time.perf_counter()

    def fail(self, stage: str, frame: Frame | None, exc: BaseException) -> None:
        if isinstance(exc, StopPipeline):
            self.reason = f"stopped by {stage}"
        elif isinstance(exc, KeyboardInterrupt):
            self.reason = "interrupted"
        elif self.failure is None:
            self.failure = (stage, frame.index if frame is not None else None, exc)
        self.stop.set()

    def finish(self, frame: Frame, value: Any, t_read: float) -> None:
        """The last step of every frame: the sink (timed), then the bookkeeping."""
        if self.sink is not None:
            self._timed("sink", self.sink, value, frame)
        self.t_end = time.perf_counter()
        self.latency.append(self.t_end - t_read)
        self.indices.append(frame.index)
        if self.keep:
            self.outputs.append(value)

    def _timed(self, name: str, fn, value, frame: Frame):
        t = time.perf_counter()
        value = fn(value, frame)
        self.times[name].append(time.perf_counter() - t)
        return value

    def read(self, it) -> tuple[Frame | None, float]:
        """The next frame (None at the end) and when it was in hand; times the capture."""
        t = time.perf_counter()
        frame = next(it, None)
        t_read = time.perf_counter()
        if frame is not None:
            self.captured += 1
            self.times["capture"].append(t_read - t)
        return frame, t_read

    def sequential(self, frames: Iterable[Frame]) -> None:
        self.t_start = time.perf_counter()
        it, frame, stage = iter(frames), None, "capture"
        try:
            while True:
                stage, frame = "capture", None
                frame, t_read = self.read(it)
                if frame is None:
                    break
                value = frame
                for stage, fn in self.stages:
                    value = self._timed(stage, fn, value, frame)
                stage = "sink"
                self.finish(frame, value, t_read)
        except BaseException as exc:  # KeyboardInterrupt and StopPipeline included: end cleanly
            self.fail(stage, frame, exc)

    def _put(self, q: queue.Queue, item) -> bool:  # a blocking put that gives up when the run stops
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                pass
        return False

    def _get(self, q: queue.Queue):  # a blocking get that gives up (None) when the run stops
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                pass
        return None

    def _offer(self, q: queue.Queue, item) -> None:
        """Put without waiting: make room by dropping the oldest waiting frame (never block a camera)."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.dropped += 1
                except queue.Empty:  # the next stage took one meanwhile
                    pass

    def _capture(self, frames: Iterable[Frame], out: queue.Queue, drop: bool, cpus: set | None) -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)  # 0: the calling thread, on Linux
        it, frame = iter(frames), None
        try:
            while not self.stop.is_set():
                frame = None
                frame, t_read = self.read(it)
                if frame is None:
                    break
                item = (frame, frame, t_read)
                if drop:
                    self._offer(out, item)
                elif not self._put(out, item):
                    return
        except BaseException as exc:
            self.fail("capture", frame, exc)
            return
        self._put(out, _END)

    def _work(self, name: str, fn, inq: queue.Queue, out: queue.Queue, cpus: set | None) -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        while (item := self._get(inq)) is not None:
            if item is _END:
                self._put(out, _END)
                return
            frame, value, t_read = item
            try:
                value = self._timed(name, fn, value, frame)
            except BaseException as exc:
                self.fail(name, frame, exc)
                return
            if not self._put(out, (frame, value, t_read)):
                return

    def pipelined(self, frames: Iterable[Frame], drop: bool, size: int, plan: tuple[set, set] | None) -> None:
        queues = [queue.Queue(maxsize=size) for _ in range(len(self.stages) + 1)]
        model_cpus, other_cpus = plan or (None, None)
        threads = [threading.Thread(target=self._capture, args=(frames, queues[0], drop, other_cpus),
                                    name="edgekit-capture", daemon=True)]
        for i, (name, fn) in enumerate(self.stages):
            cpus = model_cpus if name == "infer" else other_cpus
            threads.append(threading.Thread(target=self._work, args=(name, fn, queues[i], queues[i + 1], cpus),
                                            name=f"edgekit-{name}", daemon=True))
        self.t_start = time.perf_counter()
        for t in threads:
            t.start()
        frame = None
        try:  # the calling thread runs the sink: GUI windows want the main thread
            while (item := self._get(queues[-1])) is not None and item is not _END:
                frame, value, t_read = item
                self.finish(frame, value, t_read)
        except BaseException as exc:  # KeyboardInterrupt and StopPipeline included
            self.fail("sink", frame, exc)
        finally:
            self._stop_and_join(threads)

    def _stop_and_join(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for t in threads:
            t.join(timeout=2.0)
            if t.is_alive():
                warnings.warn(f"{t.name} did not stop within 2 s (a stage still running?); "
                              "it is left behind as a daemon thread", RuntimeWarning, stacklevel=4)

    def _drain(self, results: queue.Queue, post, block: bool) -> bool:
        """Post-process and sink finished frames (all that are ready; with ``block``, wait for one).
        False when there is nothing more to come: the end marker, a stop, or a failure here."""
        while True:
            if block:
                item = self._get(results)  # None: the run stopped
            else:
                try:
                    item = results.get_nowait()
                except queue.Empty:
                    return not self.stop.is_set()
            if item is None or item is _END:
                return False
            frame, value, t_read = item
            stage = "postprocess"
            try:
                value = self._timed(stage, post, value, frame)
                stage = "sink"
                self.finish(frame, value, t_read)
            except BaseException as exc:  # KeyboardInterrupt and StopPipeline included
                self.fail(stage, frame, exc)
                return False
            if block:
                return True

    def overlap(self, frames: Iterable[Frame], drop: bool, size: int, plan: tuple[set, set] | None) -> None:
        """The model in a thread of its own; everything else in this thread, in between its calls."""
        (_, pre), (_, infer), (_, post) = self.stages
        inputs, results = queue.Queue(maxsize=size), queue.Queue()  # results: at most size + 1 waiting
        worker = threading.Thread(target=self._work, args=("infer", infer, inputs, results, plan and plan[0]),
                                  name="edgekit-infer", daemon=True)
        before = os.sched_getaffinity(0) if plan else None
        if plan:
            os.sched_setaffinity(0, plan[1])  # this thread, for the run; put back below
        self.t_start = time.perf_counter()
        worker.start()
        it, frame, stage = iter(frames), None, "capture"
        try:
            while not self.stop.is_set():
                stage, frame = "capture", None
                frame, t_read = self.read(it)
                if frame is None:
                    break
                stage = "preprocess"
                item = (frame, self._timed(stage, pre, frame, frame), t_read)
                if drop:
                    self._offer(inputs, item)
                else:  # while the model is busy, finish frames instead of waiting for a free slot
                    while inputs.full() and self._drain(results, post, block=True):
                        pass
                    if not self._put(inputs, item):
                        break
                if not self._drain(results, post, block=False):
                    break
            else:
                return
            if self.stop.is_set() or not self._put(inputs, _END):
                return
            while self._drain(results, post, block=True):
                pass
        except BaseException as exc:  # KeyboardInterrupt and StopPipeline included: end cleanly
            self.fail(stage, frame, exc)
        finally:
            self._stop_and_join([worker])
            if before:
                os.sched_setaffinity(0, before)

    def result(self, mode: str, max_frames: int | None) -> PipelineResult:
        if self.failure is not None:
            stage, index, exc = self.failure
            where = f" on frame {index}" if index is not None else ""
            raise PipelineError(f"pipeline stage {stage!r} failed{where}: {type(exc).__name__}: {exc}",
                                stage, index) from exc
        if self.reason == "end of source" and max_frames is not None and self.captured >= max_frames:
            self.reason = "max_frames"
        wall = max(self.t_end - self.t_start, 1e-9)
        return PipelineResult(
            mode=mode, frames=len(self.indices), captured=self.captured, dropped=self.dropped, wall_s=wall,
            fps=len(self.indices) / wall, stages={k: StageStats.of(v) for k, v in self.times.items()},
            latency=StageStats.of(self.latency), stop_reason=self.reason, frame_indices=self.indices,
            frame_latency_ms=[s * 1e3 for s in self.latency], outputs=self.outputs if self.keep else None)
