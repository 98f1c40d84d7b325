"""edgekit.vision.detect against straightforward references: pure-Python IoU/NMS loops, OpenCV's
NMSBoxes, line-by-line translations of MediaPipe's anchor and box decoding, and the face
detector's build script."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import edgekit as ek
from edgekit.runtime import datasets
from edgekit.vision import preprocessing as vision
from edgekit.runtime import zoo
from edgekit.vision.detect import (Detection, blazeface, decode_boxes, decode_scores, draw_detections, draw_fps, draw_label,
                            iou, nms, ssd_anchors, weighted_nms)

FACE = zoo.entry("face-detector").postprocess


# --- references: plain Python, one box at a time -------------------------------------------------------------

def ref_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_nms(boxes, scores, iou_threshold, score_threshold=None, max_detections=None) -> list[int]:
    order = [i for i in range(len(scores)) if score_threshold is None or scores[i] >= score_threshold]
    order.sort(key=lambda i: -scores[i])  # sorted() is stable: ties keep input order
    kept = []
    for i in order:
        if max_detections is not None and len(kept) == max_detections:
            break
        if all(ref_iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(i)
    return kept


def ref_weighted_nms(boxes, scores, iou_threshold):
    """MediaPipe's WeightedNonMaxSuppression, except that an empty best box is taken alone
    (MediaPipe stops the whole loop there)."""
    remained = sorted(range(len(scores)), key=lambda i: -scores[i])
    out = []
    while remained:
        best = remained[0]
        group = [i for i in remained if ref_iou(boxes[i], boxes[best]) > iou_threshold] or [best]
        total = sum(scores[i] for i in group)
        out.append(([sum(boxes[i][c] * scores[i] for i in group) / total for c in range(4)], scores[best]))
        remained = [i for i in remained if i not in group]
    return out


coord = st.integers(0, 40).map(lambda v: v / 2)  # halves: many touching, identical and tied boxes
box = st.tuples(coord, coord, st.integers(0, 30).map(lambda v: v / 2), st.integers(0, 30).map(lambda v: v / 2)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))
score = st.one_of(st.sampled_from([0.25, 0.5, 0.75]), st.floats(0, 1, width=32))


@st.composite
def scored_boxes(draw, max_size=25):
    boxes = draw(st.lists(box, max_size=max_size))
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(draw(st.lists(score, min_size=len(boxes), max_size=len(boxes))))


# --- IoU ---------------------------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(box, max_size=8), st.lists(box, max_size=8))
def test_iou_matches_reference(a, b):
    got = iou(np.array(a).reshape(-1, 4), np.array(b).reshape(-1, 4))
    want = np.array([[ref_iou(x, y) for y in b] for x in a]).reshape(len(a), len(b))
    assert got.shape == want.shape and np.array_equal(got, want), f"iou\n{got}\nreference\n{want}"
    assert ((got >= 0) & (got <= 1)).all(), got


def test_iou_edge_cases():
    unit = [0, 0, 2, 2]
    cases = {"identical": ([unit], [unit], 1.0), "touching": ([unit], [[2, 0, 4, 2]], 0.0),
             "zero area vs box": ([[1, 1, 1, 1]], [unit], 0.0), "two empty": ([[1, 1, 1, 1]], [[1, 1, 1, 1]], 0.0),
             "half": ([unit], [[1, 0, 3, 2]], 1 / 3), "inside": ([unit], [[0, 0, 1, 1]], 0.25)}
    for name, (a, b, want) in cases.items():
        got = float(iou(np.array(a), np.array(b))[0, 0])
        assert got == pytest.approx(want), f"{name}: iou {got}, expected {want}"
    assert iou(np.zeros((0, 4)), np.array([unit])).shape == (0, 1)
    with pytest.raises(ek.InputError, match=r"shape \(N, 4\).*got \(2, 3\)"):
        iou(np.zeros((2, 3)), np.zeros((1, 4)))


# --- NMS -----------------------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(scored_boxes(), st.sampled_from([0.0, 0.2, 0.3, 0.5, 0.7, 1.0]), st.sampled_from([None, 0.25, 0.5]),
       st.sampled_from([None, 1, 3]))
def test_nms_matches_reference(data, iou_threshold, score_threshold, max_detections):
    boxes, scores = data
    got = nms(boxes, scores, iou_threshold, score_threshold, max_detections).tolist()
    want = ref_nms(boxes.tolist(), scores.tolist(), iou_threshold, score_threshold, max_detections)
    assert got == want, f"nms kept {got}, reference {want} (scores {scores.tolist()})"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 40), st.integers(1, 40)), max_size=20),
       st.data(), st.sampled_from([0.2, 0.3, 0.45, 0.5, 0.7]), st.sampled_from([0.125, 0.25, 0.5]))
def test_nms_matches_opencv(xywh, data, iou_threshold, score_threshold):
    """Where the rules agree: boxes of positive area, OpenCV's `score > t` given as `>= t` (t > 0: OpenCV asserts t >= 0)."""
    scores = np.array(data.draw(st.lists(score, min_size=len(xywh), max_size=len(xywh))), np.float32)
    boxes = np.array([(x, y, x + w, y + h) for x, y, w, h in xywh], np.float64).reshape(-1, 4)
    overlaps = iou(boxes, boxes)
    assume(not np.any(np.abs(overlaps - iou_threshold) < 1e-6))  # OpenCV rounds IoU to float32
    below = float(np.nextafter(np.float32(score_threshold), np.float32(-1)))  # float32 scores: > below == >= t
    want = np.array(cv2.dnn.NMSBoxes([list(map(float, b)) for b in xywh], scores.tolist(), below, iou_threshold),
                    np.int64).reshape(-1)
    got = nms(boxes, scores, iou_threshold, score_threshold)
    assert got.tolist() == want.tolist(), f"edgekit {got.tolist()} vs cv2.dnn.NMSBoxes {want.tolist()}"


def test_nms_edge_cases():
    a = [0, 0, 10, 10]
    cases = {  # name: (boxes, scores, kwargs, expected indices)
        "empty": (np.zeros((0, 4)), [], {}, []),
        "one box": ([a], [0.3], {}, [0]),
        "identical boxes": ([a, a, a], [0.2, 0.9, 0.5], {}, [1]),
        "zero-area boxes are kept (IoU 0)": ([[5, 5, 5, 5], [5, 5, 5, 5], a], [0.9, 0.8, 0.7], {}, [0, 1, 2]),
        "touching boxes are kept": ([a, [10, 0, 20, 10]], [0.5, 0.6], {"iou_threshold": 0.0}, [1, 0]),
        "all below the threshold": ([a, [20, 0, 30, 10]], [0.1, 0.2], {"score_threshold": 0.5}, []),
        "threshold is inclusive": ([a], [0.5], {"score_threshold": 0.5}, [0]),
        "ties keep input order": ([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], [0.5, 0.5, 0.5], {}, [0, 1, 2]),
        "tie: the first suppresses": ([a, a], [0.5, 0.5], {}, [0]),
        "max_detections": ([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], [0.1, 0.3, 0.2], {"max_detections": 2}, [1, 2]),
        "IoU equal to threshold is kept": ([[0, 0, 2, 2], [1, 0, 3, 2]], [0.9, 0.8], {"iou_threshold": 1 / 3}, [0, 1]),
    }
    for name, (boxes, scores, kw, want) in cases.items():
        got = nms(np.array(boxes, np.float64).reshape(-1, 4), np.array(scores), **kw).tolist()
        assert got == want, f"{name}: kept {got}, expected {want}"


def test_nms_rejects_nan_and_mismatch_with_a_clear_error():
    boxes = np.array([[0, 0, 1, 1], [2, 2, 3, 3]], np.float32)
    with pytest.raises(ek.InputError, match=r"scores contain NaN at \[1\]"):
        nms(boxes, np.array([0.5, np.nan]))
    with pytest.raises(ek.InputError, match="boxes contain NaN at rows"):
        nms(np.array([[0, 0, np.nan, 1]]), np.array([0.5]))
    with pytest.raises(ek.InputError, match="2 boxes but 3 scores"):
        nms(boxes, np.array([0.1, 0.2, 0.3]))


@settings(max_examples=150, deadline=None)
@given(scored_boxes(max_size=15), st.sampled_from([0.0, 0.3, 0.5]))
def test_weighted_nms_matches_reference(data, iou_threshold):
    boxes, scores = data
    scores = np.where(scores > 0, scores, 0.5)  # scores are the weights: keep them positive
    got = weighted_nms(boxes, scores, iou_threshold)
    want = ref_weighted_nms(boxes.tolist(), scores.tolist(), iou_threshold)
    assert len(got) == len(want), f"{len(got)} detections, reference {len(want)}"
    for g, (wbox, wscore) in zip(got, want):
        assert g.score == wscore and np.allclose(g.box, wbox, atol=1e-9), f"{g} vs reference {wbox}, {wscore}"


def test_weighted_nms_without_overlaps_is_plain_nms():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], np.float64)
    scores = np.array([0.2, 0.9, 0.5])
    kp = np.arange(3 * 2 * 2, dtype=np.float64).reshape(3, 2, 2)
    got = weighted_nms(boxes, scores, 0.3, keypoints=kp)
    kept = nms(boxes, scores, 0.3)
    assert [d.box for d in got] == [tuple(boxes[i]) for i in kept], (got, kept)
    assert [d.keypoints for d in got] == [tuple(map(tuple, kp[i])) for i in kept]


# --- anchors and decoding -------------------------------------------------------------------------------------------

def ref_anchors(o: dict) -> list[tuple[float, float, float, float]]:
    """SsdAnchorsCalculator::GenerateAnchors (mediapipe/calculators/tflite/ssd_anchors_calculator.cc), line by line."""
    def scale(i, n):
        return (o["min_scale"] + o["max_scale"]) * 0.5 if n == 1 else o["min_scale"] + (o["max_scale"] - o["min_scale"]) * i / (n - 1)

    strides, anchors, layer_id = o["strides"], [], 0
    while layer_id < o["num_layers"]:
        heights, widths, ratios, scales = [], [], [], []
        last = layer_id
        while last < len(strides) and strides[last] == strides[layer_id]:
            sc = scale(last, len(strides))
            if last == 0 and o["reduce_boxes_in_lowest_layer"]:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, sc, sc]
            else:
                for r in o["aspect_ratios"]:
                    ratios.append(r)
                    scales.append(sc)
                if o["interpolated_scale_aspect_ratio"] > 0:
                    nxt = 1.0 if last == len(strides) - 1 else scale(last + 1, len(strides))
                    scales.append(math.sqrt(sc * nxt))
                    ratios.append(o["interpolated_scale_aspect_ratio"])
            last += 1
        for r, sc in zip(ratios, scales):
            heights.append(sc / math.sqrt(r))
            widths.append(sc * math.sqrt(r))
        fh = math.ceil(o["input_size"][0] / strides[layer_id])
        fw = math.ceil(o["input_size"][1] / strides[layer_id])
        for y in range(fh):
            for x in range(fw):
                for k in range(len(heights)):
                    w, h = (1.0, 1.0) if o["fixed_anchor_size"] else (widths[k], heights[k])
                    anchors.append(((x + o["anchor_offset_x"]) / fw, (y + o["anchor_offset_y"]) / fh, w, h))
        layer_id = last
    return anchors


def test_face_anchors_are_the_documented_896_in_order():
    a = ssd_anchors(FACE["anchors"])
    assert a.shape == (896, 4), a.shape
    assert np.allclose(a, ref_anchors(FACE["anchors"]), atol=1e-7)
    # The documented order: 16x16 cells x 2, then 8x8 cells x 6; row-major, a cell's anchors adjacent.
    assert a[0].tolist() == a[1].tolist() == [0.5 / 16, 0.5 / 16, 1.0, 1.0]
    assert a[2, :2].tolist() == [1.5 / 16, 0.5 / 16] and a[32, :2].tolist() == [0.5 / 16, 1.5 / 16]
    assert np.all(a[512:518] == a[512]) and a[518, :2].tolist() == [1.5 / 8, 0.5 / 8]


def test_face_anchors_match_the_build_script(monkeypatch):
    build = Path(zoo.models_dir()) / "build"
    monkeypatch.syspath_prepend(str(build))  # it imports its sibling _contract.py
    script = importlib.import_module("face_detector")
    centres = script.anchor_centres(np)
    assert np.array_equal(ssd_anchors(FACE["anchors"])[:, :2], centres), "anchor centres differ from the build script's"


@pytest.mark.parametrize("variant", [{"fixed_anchor_size": False},
                                     {"fixed_anchor_size": False, "reduce_boxes_in_lowest_layer": True,
                                      "aspect_ratios": [1.0, 2.0, 0.5], "strides": [8, 16, 32, 32],
                                      "input_size": [96, 160], "num_anchors": None}])
def test_general_anchor_settings_match_reference(variant):
    params = {**FACE["anchors"], **variant}
    params = {k: v for k, v in params.items() if v is not None}
    got, want = ssd_anchors(params), np.array(ref_anchors(params), np.float32)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-6), f"{got.shape} vs {want.shape}"


def ref_decode(raw, anchors, d):
    """TensorsToDetectionsCalculator::DecodeBoxes, line by line (no exponential box sizes)."""
    boxes, kps = [], []
    for i, (ax, ay, aw, ah) in enumerate(anchors):
        r = raw[i]
        o = d["box_coord_offset"]
        y, x, h, w = r[o], r[o + 1], r[o + 2], r[o + 3]
        if d["reverse_output_order"]:
            x, y, w, h = r[o], r[o + 1], r[o + 2], r[o + 3]
        x = x / d["x_scale"] * aw + ax
        y = y / d["y_scale"] * ah + ay
        h, w = h / d["h_scale"] * ah, w / d["w_scale"] * aw
        boxes.append([x - w / 2, y - h / 2, x + w / 2, y + h / 2])
        points = []
        for k in range(d["num_keypoints"]):
            off = d["keypoint_coord_offset"] + k * d["num_values_per_keypoint"]
            ky, kx = r[off], r[off + 1]
            if d["reverse_output_order"]:
                kx, ky = r[off], r[off + 1]
            points.append([kx / d["x_scale"] * aw + ax, ky / d["y_scale"] * ah + ay])
        kps.append(points)
    return np.array(boxes), np.array(kps)


@pytest.mark.parametrize("reverse", [True, False])
def test_decode_boxes_matches_reference(reverse, rng):
    anchors = ssd_anchors({**FACE["anchors"], "fixed_anchor_size": False})
    raw = rng.normal(0, 20, (896, 16)).astype(np.float32)
    d = {**FACE["decode"], "reverse_output_order": reverse, "x_scale": 128.0, "y_scale": 64.0, "w_scale": 32.0}
    boxes, kps = decode_boxes(raw, anchors, d)
    want_boxes, want_kps = ref_decode(raw.astype(np.float64), anchors.astype(np.float64), d)
    assert np.abs(boxes - want_boxes).max() < 1e-12 and np.abs(kps - want_kps).max() < 1e-12, \
        f"box error {np.abs(boxes - want_boxes).max():.3g}, keypoint error {np.abs(kps - want_kps).max():.3g}"


def test_decode_scores_clip_then_sigmoid():
    logits = np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0])
    got = decode_scores(logits, FACE["decode"])
    want = [1 / (1 + math.exp(-max(-100.0, min(100.0, v)))) for v in logits]
    assert np.allclose(got, want, rtol=0, atol=1e-15) and got[0] > 0, f"{got} vs {want}"


def test_blazeface_on_astronaut_agrees_with_the_build_scripts_decoding():
    x, _ = vision.preprocess(datasets.sample_image("astronaut"), "face-detector")
    regressors, logits = ek.load("face-detector")(x)
    faces = blazeface((regressors, logits), FACE)
    # The build script's check: best anchor by sigmoid score, centre + offset / 128, sizes / 128.
    scores = 1 / (1 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100, 100)))
    best = int(scores.argmax())
    centre = ssd_anchors(FACE["anchors"])[best, :2] + regressors[0, best, :2] / 128
    half = regressors[0, best, 2:4] / 128 / 2
    box = np.concatenate([centre - half, centre + half])
    assert len(faces) == 1 and faces[0].score == pytest.approx(scores[best]), faces
    overlap = iou(np.array([faces[0].box]), box[None])[0, 0]
    assert overlap > 0.9, f"blended box {faces[0].box} vs best anchor's {box.tolist()}: IoU {overlap:.3f}"
    plain = blazeface((regressors, logits), {**FACE, "nms": {"algorithm": "default", "min_suppression_threshold": 0.3}})
    assert len(plain) == 1 and np.allclose(plain[0].box, box, atol=1e-6), (plain, box)


# --- drawing --------------------------------------------------------------------------------------------------------

def test_drawing_copies_unless_inplace():
    frame = np.zeros((100, 120, 3), np.uint8)
    det = Detection((10.0, 20.0, 60.0, 80.0), 0.91, 0, ((30.0, 40.0),))
    out = draw_detections(frame, [det], ["face"])
    assert not frame.any(), "draw_detections changed its input"
    assert tuple(out[80, 35]) == (0, 200, 0), f"bottom edge pixel {out[80, 35]} is not the box colour"
    assert tuple(out[40, 30]) == (0, 0, 255), f"keypoint pixel {out[40, 30]} is not red"
    same = draw_fps(frame, 30.0, inplace=True)
    assert same is frame and frame[:25, :80].any() and not frame[50:].any()
    assert draw_label(frame, "x", (500, 500)).shape == frame.shape  # clamped inside the frame
    with pytest.raises(ek.InputError, match=r"BGR uint8 frame.*got float32\[1, 3, 8, 8\]"):
        draw_detections(np.zeros((1, 3, 8, 8), np.float32), [det])
