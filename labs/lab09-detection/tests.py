"""Tests of Lab 9 (detection post-processing). The model outputs were recorded once (lab09_*.npy, public
files); boxes for IoU and NMS are synthetic or decoded from those recordings. The expected values come
from the reference solution, which agrees exactly with edgekit.vision.detect on all of them."""

import math
from pathlib import Path

import numpy as np

from edgekit.grading import call, case, close, equal, obj

HERE = Path(__file__).parent
FACE = {"num_layers": 4, "strides": [8, 16, 16, 16], "input_size": [128, 128], "min_scale": 0.1484375,
        "max_scale": 0.75, "aspect_ratios": [1.0], "interpolated_scale_aspect_ratio": 1.0,
        "reduce_boxes_in_lowest_layer": False, "anchor_offset_x": 0.5, "anchor_offset_y": 0.5,
        "fixed_anchor_size": True, "num_anchors": 896}


def recorded(name):
    both = np.load(HERE / f"lab09_{name}.npy")
    return both[None, :, :16].copy(), both[None, :, 16:].copy()


def anchors_of(spec):
    """The face detector's anchors, to feed the decoding questions (a second, loop-free implementation)."""
    out, layer, strides = [], 0, spec["strides"]
    per_layer = len(spec["aspect_ratios"]) + (spec["interpolated_scale_aspect_ratio"] > 0)
    while layer < spec["num_layers"]:
        same = sum(1 for s in strides[layer:spec["num_layers"]] if s == strides[layer])  # strides are sorted
        rows, cols = (math.ceil(n / strides[layer]) for n in spec["input_size"])
        ys, xs = np.mgrid[0:rows, 0:cols]
        centres = np.stack([(xs.ravel() + spec["anchor_offset_x"]) / cols,
                            (ys.ravel() + spec["anchor_offset_y"]) / rows], 1)
        out.append(np.repeat(centres, same * per_layer, axis=0))
        layer += same
    c = np.concatenate(out)
    return np.concatenate([c, np.ones_like(c)], 1).astype(np.float32)


ANCHORS = anchors_of(FACE)
assert ANCHORS.shape == (896, 4) and ANCHORS[512].tolist() == [0.0625, 0.0625, 1.0, 1.0]
REG, CLS = recorded("astronaut")
PREG, PCLS = recorded("pair")
rng = np.random.default_rng(9)


def decoded(name):
    """Boxes and scores of a recorded photo (the anchors here are all 1 x 1)."""
    reg, cls = recorded(name)
    r = reg[0].astype(np.float64)
    centre, size = ANCHORS[:, :2] + r[:, :2] / 128, r[:, 2:4] / 128
    logits = np.clip(cls.ravel().astype(np.float64), -100, 100)
    return np.concatenate([centre - size / 2, centre + size / 2], 1), 1 / (1 + np.exp(-logits))


ABOX, ASCORE = decoded("astronaut")
PBOX, PSCORE = decoded("pair")

# -- q1: anchors --------------------------------------------------------------------------------------
tiny = dict(FACE, num_layers=1, strides=[32], input_size=[64, 96], num_anchors=12)
case("q1", "BlazeFace's 896 anchors", call("ssd_anchors", FACE), close(atol=1e-6, dtype=True), public=True)
case("q1", "one layer, stride 32, a 64x96 input: 2x3 cells, 2 anchors each", call("ssd_anchors", tiny),
     close(atol=1e-6), public=True)
case("q1", "the palm detector: 192x192 input, 2016 anchors",
     call("ssd_anchors", dict(FACE, input_size=[192, 192], num_anchors=2016)), close(atol=1e-6), weight=2)
case("q1", "BlazeFace full range: one layer of stride 4, no interpolated anchor (2304)",
     call("ssd_anchors", dict(FACE, num_layers=1, strides=[4], input_size=[192, 192],
                              interpolated_scale_aspect_ratio=0.0, num_anchors=2304)), close(atol=1e-6))
case("q1", "the pose detector: strides 8, 16, 32, 32, 32 on 224x224 (2254)",
     call("ssd_anchors", dict(FACE, num_layers=5, strides=[8, 16, 32, 32, 32], input_size=[224, 224],
                              num_anchors=2254)), close(atol=1e-6), weight=2)
case("q1", "an input that the stride does not divide (100x70, stride 16: 7x5 cells), offsets 0",
     call("ssd_anchors", dict(FACE, num_layers=1, strides=[16], input_size=[100, 70], anchor_offset_x=0.0,
                              anchor_offset_y=0.0, num_anchors=70)), close(atol=1e-6))
case("q1", "two aspect ratios: 3 anchors per layer", call("ssd_anchors", dict(FACE, aspect_ratios=[1.0, 2.0])),
     close(atol=1e-6))
case("q1", "dtype float32", lambda ns: str(ns.ssd_anchors(FACE).dtype), equal(), weight=0.5)

# -- q2: decoding ---------------------------------------------------------------------------------------
rows = np.arange(136, 148)  # around the astronaut's best anchor (143)
odd_anchors = np.column_stack([rng.uniform(0, 1, (50, 2)), rng.uniform(0.2, 2.0, (50, 2))]).astype(np.float32)
odd_raw = rng.normal(0, 20, (50, 16)).astype(np.float32)
case("q2", "boxes of 12 astronaut rows", call("decode_boxes", REG[0, rows], ANCHORS[rows]), close(atol=1e-6),
     public=True)
case("q2", "keypoints of 12 astronaut rows", call("decode_keypoints", REG[0, rows], ANCHORS[rows]),
     close(atol=1e-6), public=True)
case("q2", "scores of a few logits", call("sigmoid_scores", np.array([-133.77, -3.0, 0.0, 0.5, 2.4567])),
     close(atol=1e-9), public=True)
case("q2", "all 896 boxes, astronaut (1, 896, 16)", call("decode_boxes", REG, ANCHORS), close(atol=1e-6), weight=2)
case("q2", "all 896 boxes, pair", call("decode_boxes", PREG, ANCHORS), close(atol=1e-6))
case("q2", "all 896 keypoints, pair", call("decode_keypoints", PREG, ANCHORS), close(atol=1e-6), weight=2)
case("q2", "anchors of other sizes: offsets and sizes scale with the anchor",
     call("decode_boxes", odd_raw, odd_anchors), close(atol=1e-6), weight=2)
case("q2", "keypoints with anchors of other sizes", call("decode_keypoints", odd_raw, odd_anchors), close(atol=1e-6))
case("q2", "another scale (192)", call("decode_boxes", odd_raw, odd_anchors, scale=192.0), close(atol=1e-6))
case("q2", "two keypoints per row (8 values)", call("decode_keypoints", odd_raw[:, :8], odd_anchors), close(atol=1e-6))
case("q2", "the 896 scores of the astronaut, shape (1, 896, 1)", call("sigmoid_scores", CLS), close(atol=1e-9),
     weight=2)
case("q2", "clipping: clip=2 caps the scores at sigmoid(2)",
     call("sigmoid_scores", np.array([-50.0, -2.5, -1.0, 1.0, 2.5, 50.0]), clip=2.0), close(atol=1e-9), weight=2)
case("q2", "float32 logits beyond +-100 do not overflow",
     call("sigmoid_scores", np.array([[-1e4], [-300.0], [300.0], [1e4]], np.float32)), close(atol=1e-12))

# -- q3: IoU ----------------------------------------------------------------------------------------------
A = np.array([[0, 0, 4, 4], [2, 0, 6, 4]], np.float64)
B = np.array([[1, 1, 3, 3], [4, 0, 8, 4], [0, 0, 4, 4]], np.float64)
rand_a = np.sort(rng.uniform(0, 100, (300, 2, 2)), axis=1).reshape(-1, 4)
rand_b = np.sort(rng.uniform(0, 100, (200, 2, 2)), axis=1).reshape(-1, 4)
case("q3", "2 boxes x 3 boxes", call("iou", A, B), close(atol=1e-9), public=True)
case("q3", "identical boxes: 1", call("iou", A, A), close(atol=1e-9))
case("q3", "touching boxes (shared edge, shared corner): 0",
     call("iou", np.array([[0, 0, 2, 2]]), np.array([[2, 0, 4, 2], [2, 2, 3, 3], [0, 2, 2, 5]])), close(atol=1e-12))
case("q3", "zero-area boxes: 0, even with themselves, and no nan",
     call("iou", np.array([[1, 1, 1, 3], [0, 0, 2, 2], [2, 2, 2, 2]]),
          np.array([[1, 1, 1, 3], [0, 1, 2, 1], [2, 2, 2, 2]])),
     close(atol=1e-12), weight=2)
case("q3", "a box with x2 < x1 counts as empty", call("iou", np.array([[3, 0, 1, 2]]), np.array([[0, 0, 4, 2]])),
     close(atol=1e-12))
case("q3", "far apart in both directions: 0, not a negative x negative area",
     call("iou", np.array([[0, 0, 1, 1]]), np.array([[5, 5, 6, 6]])), close(atol=1e-12))
case("q3", "no boxes on one side: shape (0, 3)", call("iou", np.zeros((0, 4)), B), close())
case("q3", "no boxes on the other side: shape (2, 0)", call("iou", A, np.zeros((0, 4))), close())
case("q3", "300 x 200 random boxes", call("iou", rand_a, rand_b), close(atol=1e-9), weight=2)
case("q3", "decoded astronaut boxes: 8 x 896", call("iou", ABOX[140:148], ABOX), close(atol=1e-9))

# -- q4: NMS -----------------------------------------------------------------------------------------------
three = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float64)
ties = np.array([[0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1]], np.float64)
chain = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], np.float64)  # 0-1 and 1-2 overlap, 0-2 touch
n = 200
xy = rng.uniform(0, 50, (n, 2))
rand_boxes = np.concatenate([xy, xy + rng.uniform(2, 12, (n, 2))], 1)
rand_scores = rng.choice([0.3, 0.5, 0.6, 0.8, 0.9], n)  # many ties: a sort that is not stable fails
case("q4", "three boxes, IoU threshold 0.5", call("nms", three, np.array([0.9, 0.8, 0.7]), 0.5), equal(), public=True)
case("q4", "the pair's candidates (rows 190-259): two faces", call("nms", PBOX[190:260], PSCORE[190:260], 0.3, 0.5),
     equal(), public=True)
case("q4", "the pair, all 896 rows: two faces", call("nms", PBOX, PSCORE, 0.3, 0.5), equal())
case("q4", "the astronaut: one face out of 8 candidates", call("nms", ABOX, ASCORE, 0.3, 0.5), equal())
# the right answer to these two is empty: each also asks one whose answer is not, so that [] cannot pass
case("q4", "no boxes at all (and three)",
     lambda ns: [ns.nms(np.zeros((0, 4)), np.zeros(0), 0.3), ns.nms(three, np.array([0.9, 0.8, 0.7]), 0.3)], equal(),
     weight=2)
case("q4", "no box reaches the score threshold (and at 0.3 one does)",
     lambda ns: [ns.nms(three, np.array([0.4, 0.3, 0.2]), 0.5, t) for t in (0.5, 0.3)], equal())
case("q4", "identical boxes with equal scores: only the first", call("nms", np.tile([[1.0, 1, 5, 5]], (4, 1)),
                                                                       np.full(4, 0.7), 0.3), equal(), weight=2)
case("q4", "equal scores keep input order", call("nms", ties, np.array([0.5, 0.9, 0.5, 0.9]), 0.3), equal(), weight=2)
case("q4", "zero-area boxes suppress nothing and are kept",
     call("nms", np.array([[1, 1, 1, 5], [1, 1, 1, 5], [0, 0, 4, 4]], np.float64), np.array([0.9, 0.8, 0.7]), 0.3),
     equal())
case("q4", "touching boxes are all kept", call("nms", chain[[0, 2]], np.array([0.6, 0.7]), 0.0), equal())
case("q4", "a suppressed box suppresses nothing", call("nms", chain, np.array([0.9, 0.8, 0.7]), 0.3), equal())
case("q4", "IoU exactly at the threshold is kept (0.5)",
     call("nms", np.array([[0, 0, 2, 2], [0, 0, 2, 1]], np.float64), np.array([0.9, 0.8]), 0.5), equal())
case("q4", "a score exactly at the threshold is kept",
     call("nms", three, np.array([0.5, 0.25, 0.5]), 0.5, 0.5), equal())
case("q4", "200 random boxes with many equal scores", call("nms", rand_boxes, rand_scores, 0.3), equal(), weight=2)
case("q4", "200 random boxes, IoU 0.5 and score threshold 0.6", call("nms", rand_boxes, rand_scores, 0.5, 0.6), equal())

# -- q5: back to the photo, the pipeline and drawing --------------------------------------------------------
pts = np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.25, 0.3]])
case("q5", "points on the pair (300x600)", call("to_photo", pts, (300, 600, 3)), close(atol=1e-6), public=True)
astronaut_outputs = [obj("lab09_support:recorded_output", "astronaut", part)  # built in the student's process
                     for part in ("regressors", "classificators")]
case("q5", "the astronaut's faces", call("detect_faces", *astronaut_outputs, (512, 512, 3)), close(atol=1e-3),
     public=True)
case("q5", "points on a tall photo (640x427)", call("to_photo", pts, (640, 427)), close(atol=1e-6))
case("q5", "points on a square photo (512x512)", call("to_photo", pts[None].repeat(3, 0), (512, 512)), close(atol=1e-6))
case("q5", "a non-square input size (96, 160) and a 300x451 photo", call("to_photo", pts, (300, 451), size=(96, 160)),
     close(atol=1e-6))
edge_boxes = np.array([[-0.1, 0.1, 0.5, 0.3], [0.2, 0.2, 0.4, 0.4], [0.9, 0.7, 1.2, 1.0]])
case("q5", "boxes on the pair, clipped to the photo", call("unletterbox", edge_boxes, (300, 600, 3)), close(atol=1e-6),
     weight=2)
case("q5", "boxes on a tall photo", call("unletterbox", edge_boxes, (640, 427)), close(atol=1e-6))
case("q5", "the pair's two faces", call("detect_faces", PREG, PCLS, (300, 600, 3)), close(atol=1e-3), weight=2)
case("q5", "a higher score threshold: no face, shape (0, 17)",
     call("detect_faces", PREG, PCLS, (300, 600, 3), min_score=0.99), close())
case("q5", "min_score 0.2 and IoU threshold 0.6 on the pair",
     call("detect_faces", PREG, PCLS, (300, 600, 3), min_score=0.2, iou_threshold=0.6), close(atol=1e-3))
canvas = np.full((60, 80, 3), 30, np.uint8)
faces = np.array([[10.4, 5.6, 50.5, 40.49, 0.9, 20.0, 20.0, 30.2, 19.7, 25.0, 28.0, 25.0, 33.0, 12.0, 22.0, 45.0, 22.0],
                  [60.0, 30.0, 79.0, 59.0, 0.6, *[65.0, 40.0] * 6]])
case("q5", "drawing two faces", call("draw_faces", canvas, faces), equal(), weight=2, public=True)
case("q5", "drawing in another colour", call("draw_faces", canvas, faces[:1], color=(255, 255, 0)), equal())
case("q5", "drawing no face returns the image", call("draw_faces", canvas, np.zeros((0, 17))), equal())
