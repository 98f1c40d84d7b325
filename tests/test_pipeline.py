"""edgekit.vision.pipeline: order, drops, errors with the stage's name, clean stops, every mode == raw onnxruntime."""

from __future__ import annotations

import _thread
import json
import os
import threading
import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import edgekit as ek
from edgekit.vision.pipeline import Pipeline, PipelineError, PipelineResult, StopPipeline
from edgekit.vision.video import Frame, VideoSource

from conftest import make_model, save

SYNTH = "synthetic://?frames=40&size=64x48"
MODES = ["pipelined", "overlap", "sequential"]
THREADED = MODES[:2]


def images(n: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), i % 256, np.uint8) for i in range(n)]


def no_pipeline_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("edgekit-")]


@pytest.fixture
def conv_path(tmp_path):
    """y = conv3x3(x) with fixed weights, x: float32[1,3,48,64] (a frame, NCHW)."""
    w = np.random.default_rng(0).standard_normal((2, 3, 3, 3)).astype(np.float32)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 48, 64])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 48, 64])],
                   initializers=[helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel().tolist())])
    return save(m, tmp_path / "conv.onnx")


def to_input(frame: Frame) -> np.ndarray:
    return np.ascontiguousarray(frame.image.transpose(2, 0, 1)[None], dtype=np.float32) / 255


@pytest.mark.parametrize("mode", MODES)
def test_every_frame_in_order(mode):
    r = Pipeline(images(50), preprocess=lambda f: int(f.image[0, 0, 0]), infer=lambda x: x * 10,
                 postprocess=lambda y, f: (f.index, y), keep_outputs=True).run(mode=mode)
    assert (r.frames, r.captured, r.dropped, r.stop_reason) == (50, 50, 0, "end of source")
    assert r.frame_indices == list(range(50))
    assert r.outputs == [(i, 10 * i) for i in range(50)]
    assert set(r.stages) == {"capture", "preprocess", "infer", "postprocess"} and r.stages["infer"].n == 50
    assert len(r.frame_latency_ms) == 50 and r.latency.n == 50 and r.fps > 0
    assert no_pipeline_threads(), f"threads left: {threading.enumerate()}"


def test_every_mode_agrees_with_onnxruntime(conv_path):
    model = ek.load(conv_path, providers="cpu", threads=1)
    pipe = Pipeline(SYNTH, preprocess=to_input, infer=model, postprocess=lambda y, f: y[0][0], keep_outputs=True)
    runs = {mode: pipe.run(mode=mode) for mode in MODES}
    assert {m: r.frames for m, r in runs.items()} == {m: 40 for m in MODES}
    session = ort.InferenceSession(str(conv_path), providers=["CPUExecutionProvider"])  # the oracle
    with VideoSource(SYNTH) as src:
        for frame, *ys in zip(src, *(r.outputs for r in runs.values())):
            for mode, y in zip(MODES[:-1], ys):
                np.testing.assert_array_equal(y, ys[-1], err_msg=f"frame {frame.index}: {mode} != sequential")
            np.testing.assert_allclose(ys[-1], session.run(None, {"x": to_input(frame)})[0][0], rtol=1e-5, atol=1e-5,
                                       err_msg=f"frame {frame.index}: pipeline != raw onnxruntime")


def test_max_frames_and_uri_source():
    r = Pipeline(SYNTH).run(max_frames=7)
    assert (r.frames, r.captured, r.stop_reason) == (7, 7, "max_frames")


@pytest.mark.parametrize("mode", THREADED)
def test_slow_consumer_drops_the_oldest_frames(mode):
    def slow(x):
        time.sleep(0.005)
        return x

    r = Pipeline(images(60), preprocess=lambda f: f.index, infer=slow, drop_frames=True, queue_size=1,
                 keep_outputs=True).run(mode=mode)
    assert r.dropped > 0, f"60 frames read at once, 5 ms each to process: expected drops, got {r}"
    assert r.frames + r.dropped == r.captured == 60, f"every frame read is processed or dropped: {r}"
    assert r.frame_indices == sorted(r.frame_indices), "drops never reorder frames"
    assert r.frame_indices[-1] == 59, "the newest frame survives"


def test_no_drops_when_told_even_for_a_live_source():
    class LiveFrames(list):
        live = True  # like a camera: the default would drop

    slow = lambda x: time.sleep(0.002) or x  # noqa: E731
    r = Pipeline(LiveFrames(images(20)), infer=slow, drop_frames=False, queue_size=1).run()
    assert (r.frames, r.dropped) == (20, 0)
    auto = Pipeline(LiveFrames(images(60)), preprocess=lambda f: f.index, infer=lambda x: time.sleep(0.005) or x,
                    queue_size=1).run()
    assert auto.dropped > 0, "a live source drops by default"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stage", ["preprocess", "infer", "postprocess", "sink"])
def test_a_failing_stage_is_named(mode, stage):
    def boom(*args):
        frame = args[-1] if stage != "infer" else None
        if frame is None or frame.index == 3:
            raise ValueError("bad pixel")
        return args[0]

    fns = {"preprocess": lambda f: f.index, "infer": lambda x: x, "postprocess": lambda y, f: y,
           "sink": lambda out, f: None}
    fns[stage] = boom if stage != "infer" else (lambda x: boom(x) if x == 3 else x)
    with pytest.raises(PipelineError) as info:
        Pipeline(images(20), **fns).run(mode=mode)
    err = info.value
    assert (err.stage, err.frame_index) == (stage, 3), str(err)
    assert isinstance(err.__cause__, ValueError) and isinstance(err, ek.EdgekitError)
    assert f"'{stage}' failed on frame 3: ValueError: bad pixel" in str(err)
    assert no_pipeline_threads()


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_source_is_named(mode):
    def frames():
        yield from images(2)
        raise OSError("camera unplugged")

    with pytest.raises(PipelineError, match="'capture' failed.*camera unplugged") as info:
        Pipeline(frames()).run(mode=mode)
    assert info.value.stage == "capture"


@pytest.mark.parametrize("mode", MODES)
def test_stop_pipeline_from_the_sink(mode):
    def sink(out, frame):
        if frame.index == 4:
            raise StopPipeline

    r = Pipeline(images(50), sink=sink).run(mode=mode)
    assert r.stop_reason == "stopped by sink" and r.frames == 4, str(r)
    assert "sink" in r.stages and no_pipeline_threads()


@pytest.mark.parametrize("mode", MODES)
def test_ctrl_c_stops_cleanly_and_returns_what_was_done(mode):
    def infer(x):
        if x == 5:
            _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread
        time.sleep(0.001)
        return x

    r = Pipeline(images(500), preprocess=lambda f: f.index, infer=infer).run(mode=mode)
    assert r.stop_reason == "interrupted" and 0 < r.frames < 500, str(r)
    assert no_pipeline_threads()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning needs Linux and two CPUs")
@pytest.mark.parametrize("mode", THREADED)
def test_pin_cores_gives_the_model_a_cpu_of_its_own(mode):
    seen = {}

    def where(stage):
        return lambda *a: seen.setdefault(stage, os.sched_getaffinity(0)) and a[0]

    cpus = sorted(os.sched_getaffinity(0))
    r = Pipeline(images(10), preprocess=lambda f: seen.setdefault("preprocess", os.sched_getaffinity(0)) and f.index,
                 infer=where("infer"), pin_cores=True, keep_outputs=True).run(mode=mode)
    assert r.outputs == list(range(10))
    assert seen["infer"] == {cpus[-1]} and seen["preprocess"] == set(cpus[:-1]), seen
    assert os.sched_getaffinity(0) == set(cpus), "the calling thread is left as it was"


def test_result_is_data():
    r = Pipeline(images(5)).run()
    assert isinstance(r, PipelineResult)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema"] == "edgekit.pipeline/1" and d["frames"] == 5 and "outputs" not in d
    assert set(d["stages"]["infer"]) == {"n", "mean_ms", "p50_ms", "p90_ms", "max_ms"}
    assert "FPS" in str(r) and "end-to-end" in str(r)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        Pipeline(images(1)).run(mode="parallel")
    with pytest.raises(ValueError, match="queue_size"):
        Pipeline(images(1), queue_size=0)
