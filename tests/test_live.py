"""edgekit.vision.live: face boxes on the synthetic clip, headless video output, display detection, the CLI."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import onnxruntime as ort
import pytest

import edgekit as ek
from edgekit.vision import live
from edgekit.cli import video as video_cli
from edgekit.vision.video import Frame, VideoSource, VideoSourceError, _Synthetic

CLIP = "synthetic://?frames=20&size=160x120"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgekit")
    video_cli.register(p.add_subparsers(dest="command", required=True))
    return p


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(live.sys, "platform", "linux")


def test_one_face_per_frame_with_its_keypoints_inside_the_box():
    stages = live.stages_for("face-detector")
    session = ort.InferenceSession(str(ek.zoo.path("face-detector")), providers=["CPUExecutionProvider"])
    synth = _Synthetic(20, 30.0, (320, 240), "face")
    with VideoSource("synthetic://?frames=20&size=320x240&pattern=face") as src:
        for frame in src:
            x = stages.preprocess(frame)
            outputs = session.run(None, {"input": x})  # raw onnxruntime as the model
            (det,) = stages.postprocess(outputs, frame)  # NMS leaves exactly one face
            assert isinstance(det, ek.Detection) and det.label == 0
            # Weighted NMS blends boxes but keeps the best anchor's score: sigmoid of the top logit.
            expected = 1 / (1 + np.exp(-outputs[1].max()))
            assert det.score == pytest.approx(expected, rel=1e-6) and det.score > 0.8, det
            # The face sits in the middle of the pasted crop (see video._Synthetic).
            px, py = synth.position(frame.index)
            cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
            assert abs(cx - (px + synth.side * 0.5)) < synth.side * 0.2, (frame.index, det.box, (px, py))
            assert abs(cy - (py + synth.side * 0.5)) < synth.side * 0.25, (frame.index, det.box, (px, py))
            x1, y1, x2, y2 = det.box
            assert len(det.keypoints) == 6 and all(x1 <= kx <= x2 and y1 <= ky <= y2 for kx, ky in det.keypoints), \
                (frame.index, det.box, det.keypoints)


def _photo_frames():
    """BGR frames: the synthetic clip (a face moving, and a disc) and every bundled photo."""
    with VideoSource("synthetic://?frames=6&size=640x480&pattern=face") as src:
        frames = [(f"clip-{f.index}", f.image) for f in src]
    frames.append(("disc", VideoSource("synthetic://?frames=1&pattern=disc").read().image))
    return frames + [(name, cv2.cvtColor(ek.datasets.sample_image(name), cv2.COLOR_RGB2BGR))
                     for name in ek.datasets.sample_images()]


def test_live_stages_give_exactly_what_vision_run_gives():
    """One recipe: the live stages and vision.run (the photo round trip) find the same faces, to the bit."""
    stages, model = live.stages_for("face-detector"), ek.load("face-detector")
    found = 0
    for name, image in _photo_frames():
        frame = Frame(0, 0.0, image.copy())
        got = stages.postprocess(model(stages.preprocess(frame), stages.outputs), frame)
        want = ek.vision.preprocessing.run("face-detector", image, color="bgr").detections
        assert got == want, (name, got, want)  # dataclass equality: boxes, scores, keypoints exactly
        found += len(want)
    assert found >= 7, f"only {found} faces in 6 clip frames and the astronaut: the comparison proves little"


def _dark_digits_on_paper(n: int) -> list[tuple[np.ndarray, int]]:
    """BGR scans of test digits, dark ink on white paper (the manifest's digits are bright on black)."""
    x, y = ek.datasets.digits(split="test")
    out = []
    for i in range(n):
        ink = cv2.resize(np.round(x[i, 0] * 255).astype(np.uint8), (48, 48), interpolation=cv2.INTER_NEAREST)
        out.append((cv2.cvtColor(255 - ink, cv2.COLOR_GRAY2BGR), int(y[i])))
    return out


def test_live_classifies_digits_like_vision_run_inverting_dark_ink():
    stages, model = live.stages_for("digits-cnn"), ek.load("digits-cnn")
    spec = dict(ek.zoo.entry("digits-cnn").preprocess)
    right = 0
    for image, digit in _dark_digits_on_paper(30):
        frame = Frame(0, 0.0, image.copy())
        x = stages.preprocess(frame)
        # The oracle for the invert: numpy's 255 - image, then the manifest's plain preprocess.
        np.testing.assert_array_equal(x, ek.preprocess(255 - image, spec, color="bgr").input)
        (det,) = stages.postprocess(model(x, stages.outputs), frame)
        (label, p), = ek.vision.preprocessing.run("digits-cnn", image, top=1, color="bgr").top
        assert (ek.zoo.labels("digits-cnn")[det.label], det.score) == (label, p), (det, label, p)
        right += label == str(digit)
    assert right >= 27, f"{right}/30 right: is the ink inverted?"


def test_no_face_no_box():
    stages = live.stages_for("face-detector")
    model = ek.load("face-detector", threads=1)
    frame = VideoSource("synthetic://?frames=1&pattern=disc").read()
    assert stages.postprocess(model(stages.preprocess(frame)), frame) == []


def test_preprocessing_is_vision_on_the_bgr_frame():
    frame = VideoSource("synthetic://?frames=1&size=640x480").read()
    spec = dict(ek.zoo.entry("face-detector").preprocess)
    x = live.stages_for("face-detector").preprocess(frame)
    # The oracle: OpenCV turns the whole frame to RGB first, then vision has no conversion left to do.
    want, t = ek.preprocess(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB), spec, color="rgb")
    np.testing.assert_array_equal(x, want)
    assert frame.meta["transform"] == t and t.target_size == (128, 128)


def test_classifier_gets_a_label():
    stages = live.stages_for("digits-cnn")
    frame = Frame(0, 0.0, np.zeros((48, 64, 3), np.uint8))
    x = stages.preprocess(frame)
    assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32
    (det,) = stages.postprocess(ek.load("digits-cnn")(x), frame)
    assert det.label in range(10) and 0 < det.score <= 1 and det.box == (0.0, 0.0, 64.0, 48.0), det
    stages.draw(frame.image, [det])
    assert frame.image.any(), "the label should be drawn on the frame"


def test_only_zoo_models(tmp_path):
    with pytest.raises(ek.EdgekitError, match="needs a zoo model"):
        live.stages_for(str(tmp_path / "mine.onnx"))


def test_writes_an_annotated_video_headless(tmp_path, headless):
    out = tmp_path / "annotated.mp4"
    res = live.run_live("face-detector", CLIP, out=out)  # show=None: no display here, so no window
    assert not res.shown and res.out == str(out)
    assert res.pipeline.frames == 20 and res.detected_frames == 20, res.pipeline
    with VideoSource(out) as written, VideoSource(CLIP) as raw:
        pairs = list(zip(written, raw))
    assert len(pairs) == 20
    # Boxes and their captions are drawn in green (0, 200, 0): many more green pixels than in the raw clip.
    green = lambda img: int(((img[..., 1] > 150) & (img[..., 0] < 80) & (img[..., 2] < 80)).sum())  # noqa: E731
    assert all(green(w.image) > green(r.image) + 50 for w, r in pairs), [green(w.image) for w, _ in pairs]
    assert res.to_dict()["pipeline"]["frames"] == 20


def test_display_detection(headless, monkeypatch):
    ok, why = live.has_display()
    assert not ok and ("DISPLAY" in why or "no GUI" in why), why
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:                           NONE\n")
    assert live.gui_backend() is None
    assert "headless" in live.has_display()[1]
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:   QT5\n    QT:   YES (ver 5.15)\n")
    assert live.gui_backend() == "QT5"
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:\n    Win32 UI:      YES\n")
    assert live.gui_backend() == "Win32 UI"
    monkeypatch.setenv("DISPLAY", ":0")
    assert live.has_display()[0]


def test_cli_without_a_display_writes_the_default_file(tmp_path, headless, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = parser().parse_args(["live", "face-detector", "--source", CLIP, "--max-frames", "6"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert (tmp_path / video_cli.DEFAULT_OUT).is_file(), captured
    assert "6/6 frames with a detection" in captured.out and "no window" in captured.err
    assert VideoSource(tmp_path / video_cli.DEFAULT_OUT).frame_count == 6


def test_cli_sequential_no_drop_and_out(tmp_path, headless, capsys):
    out = tmp_path / "a.avi"
    args = parser().parse_args(["live", "face-detector", "--source", CLIP, "--out", str(out), "--sequential",
                                "--no-drop"])
    assert args.func(args) == 0
    assert "sequential: 20 frames" in capsys.readouterr().out and out.is_file()


def test_bad_out_suffix_fails_before_the_first_frame(tmp_path):
    with pytest.raises(VideoSourceError, match=".mp4 or .avi"):
        live.run_live("face-detector", CLIP, out=tmp_path / "a.gif", show=False)


@pytest.mark.parametrize("mode", [None, "pipelined"])
def test_cli_pinned(tmp_path, headless, capsys, mode):
    args = parser().parse_args(["live", "face-detector", "--source", CLIP, "--out", str(tmp_path / "p.mp4"),
                                "--pin-cores", "--max-frames", "5"] + (["--mode", mode] if mode else []))
    expected = f"{mode or 'overlap'}: 5 frames"  # overlap is the default
    assert args.func(args) == 0 and expected in capsys.readouterr().out


def test_cli_missing_camera_is_a_teaching_error(headless, tmp_path):
    args = parser().parse_args(["live", "face-detector", "--source", "camera://99", "--out", str(tmp_path / "x.mp4")])
    with pytest.raises(VideoSourceError, match="no camera at index 99.*synthetic://"):
        args.func(args)
