"""Tests of Lab 8. Frames come from the deterministic synthetic source; the queue is judged by what
comes out of it (scripted in one thread, or with a real producer and consumer whose output does not
depend on timing); stage statistics use the shipped, simulated timing log.

The scripted queue cases are driven from the grader: a trusted copy of lab08_support.run_script calls
the student's FrameQueue's put/get one by one, so what a case sees is what the queue answered. The
threaded cases need threads next to the queue, in the student's process: they run the lab's own
lab08_support.run_threads there (not a notebook helper)."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from edgekit.grading import call, case, close, equal
from edgekit.vision.video import VideoSource

_spec = importlib.util.spec_from_file_location("lab08_support_grader", Path(__file__).parent / "lab08_support.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)
LOG = json.loads((Path(__file__).parent / "lab08_timing_log.json").read_text())
STAGES = LOG["stages"]
RUNS = LOG["runs"]


def frame(uri, i=0):
    with VideoSource(uri) as src:
        for f in src:
            if f.index == i:
                return f.image


# -- q1: pre-processing -----------------------------------------------------------------------------
f320 = frame("synthetic://?frames=20&size=320x240", 10)
rng = np.random.default_rng(8)
case("q1", "a 320x240 synthetic frame", call("preprocess_frame", f320), close(atol=1e-6, dtype=True), public=True)
case("q1", "a portrait frame (60 wide, 100 high)", call("preprocess_frame", rng.integers(0, 256, (100, 60, 3), np.uint8)),
     close(atol=1e-6), weight=2)
case("q1", "a 640x480 frame to 64x64", call("preprocess_frame", frame("synthetic://?frames=5&size=640x480", 3), 64),
     close(atol=1e-6))
case("q1", "a square frame: no padding", call("preprocess_frame", rng.integers(0, 256, (50, 50, 3), np.uint8)),
     close(atol=1e-6))
case("q1", "an odd padding (200x121 frame)", call("preprocess_frame", rng.integers(0, 256, (121, 200, 3), np.uint8)),
     close(atol=1e-6))
case("q1", "dtype float32 and C-contiguous",
     lambda ns: [str(ns.preprocess_frame(f320).dtype), ns.preprocess_frame(f320).flags["C_CONTIGUOUS"]], equal())

# -- q2: the queue ----------------------------------------------------------------------------------
three = [["put", 0], ["put", 1], ["put", 2], ["get"], ["put", 3]]
case("q2", "waiting: a full queue refuses (timeout)", call("queue_script", 2, False, three), equal(), public=True)
case("q2", "dropping: the oldest goes", call("queue_script", 2, True, three), equal(), public=True)


def script(maxsize, drop_oldest, steps):
    """What the student's FrameQueue answers to ``steps``, each put and get asked from here."""
    return lambda ns: support.run_script(ns.FrameQueue, maxsize, drop_oldest, steps)


def threads(n_frames, maxsize, drop_oldest):
    return lambda ns: ns.lab08_support.run_threads(ns.FrameQueue, n_frames, maxsize, drop_oldest)


case("q2", "waiting: a full queue refuses (asked by the grader)", script(2, False, three), equal())
case("q2", "dropping: the oldest goes (asked by the grader)", script(2, True, three), equal())
case("q2", "get on an empty queue times out with None", script(3, False, [["get"], ["put", 7], ["get"], ["get"]]),
     equal())
case("q2", "maxsize 1, dropping: always the newest",
     script(1, True, [["put", i] for i in range(6)] + [["get"], ["put", 9]]), equal(), weight=2)
case("q2", "first in, first out", script(4, False, [["put", i] for i in range(4)] + [["get"]] * 2
                                         + [["put", 10], ["put", 11], ["put", 12]]), equal())
case("q2", "threads, waiting: every frame, in order", threads(200, 2, False), equal(), weight=2)
case("q2", "threads, slow consumer, dropping: the newest frames", threads(50, 3, True), equal(), weight=2)

# -- q3: the timing log -----------------------------------------------------------------------------
case("q3", "the pipelined run: the numbers", call("report_numbers", RUNS["pipelined"], STAGES), close(rtol=1e-9),
     public=True)
case("q3", "the pipelined run: the whole report", call("stage_report", RUNS["pipelined"], STAGES), close(1e-9, 1e-9))
case("q3", "the sequential run", call("stage_report", RUNS["sequential"], STAGES), close(1e-9, 1e-9))
first = {k: RUNS["pipelined"][k][:25] for k in ("index", "start", "end")}
case("q3", "the first 25 frames (filling the pipeline)", call("stage_report", first, STAGES), close(1e-9, 1e-9))
tiny = {"index": [0, 1, 2], "start": [[10.0, 10.002], [10.004, 10.005], [10.008, 10.010]],
        "end": [[10.002, 10.003], [10.005, 10.009], [10.010, 10.013]]}
case("q3", "three frames, two stages", call("stage_report", tiny, ["decode", "model"]), close(1e-9, 1e-9), weight=2)

# -- q4: throughput ---------------------------------------------------------------------------------
stage_ms = {"capture": 4.0, "preprocess": 6.5, "infer": 21.0, "postprocess": 2.5}
case("q4", "four stages, no camera: the numbers", call("throughput_numbers", stage_ms), close(rtol=1e-9), public=True)
case("q4", "a 30 FPS camera: the numbers", call("throughput_numbers", stage_ms, 30), close(rtol=1e-9), public=True)
case("q4", "four stages, no camera: the whole answer", call("throughput", stage_ms), close(1e-9, 1e-9))
case("q4", "a 30 FPS camera", call("throughput", stage_ms, camera_fps=30), close(1e-9, 1e-9))
case("q4", "a 60 FPS camera (the pipeline cannot keep up)", call("throughput", stage_ms, camera_fps=60), close(1e-9, 1e-9),
     weight=2)
case("q4", "a 10 FPS camera (both keep up)", call("throughput", stage_ms, camera_fps=10), close(1e-9, 1e-9))
case("q4", "a tie: the first slowest stage", call("throughput", {"a": 2.0, "b": 5.0, "c": 5.0, "d": 1.0}),
     close(1e-9, 1e-9))
case("q4", "one stage", call("throughput", {"infer": 40.0}, camera_fps=25), close(1e-9, 1e-9))
