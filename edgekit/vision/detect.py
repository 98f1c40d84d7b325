"""Detections: IoU, non-maximum suppression, SSD anchors, BlazeFace decoding, and drawing them.

Boxes are ``x1, y1, x2, y2`` (left, top, right, bottom) in one unit throughout: fractions of the
model input straight out of a decoder, pixels of the photo after
:func:`edgekit.vision.image.unletterbox_boxes`. Frames for drawing are OpenCV's BGR uint8.

>>> boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
>>> nms(boxes, np.array([0.9, 0.8, 0.7]), iou_threshold=0.5).tolist()
[0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._errors import InputError


@dataclass(frozen=True)
class Detection:
    """One object found: its box, score, class index and (optional) keypoints ``((x, y), ...)``."""

    box: tuple[float, float, float, float]
    score: float
    label: int = 0
    keypoints: tuple[tuple[float, float], ...] = ()

    def to_dict(self, labels: Sequence[str] | None = None) -> dict:
        d = {"box": list(self.box), "score": self.score, "label": self.label}
        if labels is not None:
            d["label_name"] = labels[self.label]
        if self.keypoints:
            d["keypoints"] = [list(p) for p in self.keypoints]
        return d


def _boxes(boxes, what: str = "boxes") -> np.ndarray:
    b = np.asarray(boxes, np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"{what} must have shape (N, 4) as x1, y1, x2, y2; got {b.shape}")
    if np.isnan(b).any():
        raise InputError(f"{what} contain NaN at rows {np.flatnonzero(np.isnan(b).any(1))[:5].tolist()}")
    return b


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``boxes_a`` (N, 4) with every box in ``boxes_b`` (M, 4).

    Boxes that touch, or have zero area, overlap by 0 (even two identical empty boxes).

    >>> iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2], [2, 0, 4, 2]])).tolist()
    [[0.3333333333333333, 0.0]]
    """
    return _iou(_boxes(boxes_a, "boxes_a"), _boxes(boxes_b, "boxes_b"))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`iou` of checked float64 boxes (the NMS loops call it once per kept box)."""
    a, b = a[:, None], b[None]
    w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    inter = w * h

    def area(x):
        return np.maximum(x[..., 2] - x[..., 0], 0) * np.maximum(x[..., 3] - x[..., 1], 0)

    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _candidates(boxes, scores, score_threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = _boxes(boxes)
    s = np.asarray(scores, np.float64).reshape(-1)
    if len(s) != len(b):
        raise InputError(f"{len(b)} boxes but {len(s)} scores; give one score per box")
    if np.isnan(s).any():
        raise InputError(f"scores contain NaN at {np.flatnonzero(np.isnan(s))[:5].tolist()}: the model output is "
                         "broken (check its input: float32, normalised as the manifest says)")
    keep = np.arange(len(s)) if score_threshold is None else np.flatnonzero(s >= score_threshold)
    order = keep[np.argsort(-s[keep], kind="stable")]  # best first; equal scores keep input order
    return b, s, order


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5, score_threshold: float | None = None,
        max_detections: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    Boxes with ``score >= score_threshold`` are visited in descending score (ties: input order); a
    box is dropped when its IoU with an already kept box is ``> iou_threshold``. The same rule as
    ``cv2.dnn.NMSBoxes``, except that OpenCV keeps ``score > threshold`` and calls two empty boxes
    identical (IoU 1).

    >>> nms(np.array([[0, 0, 4, 4], [0, 0, 4, 4]]), np.array([0.5, 0.5])).tolist()
    [0]
    """
    b, _, order = _candidates(boxes, scores, score_threshold)
    kept: list[int] = []
    while len(order) and (max_detections is None or len(kept) < max_detections):
        best, order = order[0], order[1:]
        kept.append(int(best))
        order = order[_iou(b[best:best + 1], b[order])[0] <= iou_threshold]
    return np.array(kept, np.int64)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3, *,
                 keypoints: np.ndarray | None = None, score_threshold: float | None = None,
                 max_detections: int | None = None) -> list[Detection]:
    """MediaPipe's "weighted" NMS: each kept box is the score-weighted mean of the boxes it suppresses.

    Blending steadies a face box that several neighbouring anchors all found. The score stays the
    best one's. ``keypoints`` (N, K, 2) are blended the same way.

    >>> d = weighted_nms(np.array([[0, 0, 10, 10], [2, 0, 12, 10]]), np.array([0.75, 0.25]))
    >>> d[0].box, d[0].score
    ((0.5, 0.0, 10.5, 10.0), 0.75)
    """
    b, s, order = _candidates(boxes, scores, score_threshold)
    k = np.zeros((len(b), 0, 2)) if keypoints is None else np.asarray(keypoints, np.float64).reshape(len(b), -1, 2)
    out: list[Detection] = []
    while len(order) and (max_detections is None or len(out) < max_detections):
        overlap = _iou(b[order[:1]], b[order])[0] > iou_threshold
        group = order[overlap] if overlap[0] else order[:1]  # a zero-area best box overlaps nothing, not even itself
        total = s[group].sum()
        w = s[group] / total if total > 0 else np.full(len(group), 1 / len(group))
        box, kps = w @ b[group], w @ k[group].reshape(len(group), -1)
        out.append(Detection(tuple(box.tolist()), float(s[order[0]]),
                             keypoints=tuple(zip(kps[0::2].tolist(), kps[1::2].tolist()))))
        order = order[~overlap] if overlap[0] else order[1:]
    return out


def ssd_anchors(params: dict) -> np.ndarray:
    """(N, 4) anchors ``x_center, y_center, w, h`` (fractions of the input), as MediaPipe's
    SsdAnchorsCalculator makes them from a manifest's ``postprocess.anchors``.

    Consecutive layers with the same stride share one grid; per cell come the anchors of each
    layer (one per aspect ratio, plus one interpolated scale), cells row-major.

    >>> a = ssd_anchors(__import__("edgekit").zoo.entry("face-detector").postprocess["anchors"])
    >>> a.shape, a[0].tolist(), a[512].tolist()
    ((896, 4), [0.03125, 0.03125, 1.0, 1.0], [0.0625, 0.0625, 1.0, 1.0])
    """
    strides, n = list(params["strides"]), params["num_layers"]
    lo, hi = params["min_scale"], params["max_scale"]
    in_h, in_w = params["input_size"]

    def scale(i: int) -> float:
        return (lo + hi) / 2 if len(strides) == 1 else lo + (hi - lo) * i / (len(strides) - 1)

    anchors, layer = [], 0
    while layer < n:
        sizes = []  # (w, h) of each anchor of one cell
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            if last == 0 and params.get("reduce_boxes_in_lowest_layer"):
                pairs = [(1.0, 0.1), (2.0, scale(last)), (0.5, scale(last))]
            else:
                pairs = [(r, scale(last)) for r in params["aspect_ratios"]]
                if params.get("interpolated_scale_aspect_ratio", 0) > 0:
                    following = 1.0 if last == len(strides) - 1 else scale(last + 1)
                    pairs.append((params["interpolated_scale_aspect_ratio"], np.sqrt(scale(last) * following)))
            sizes += [(sc * np.sqrt(r), sc / np.sqrt(r)) for r, sc in pairs]
            last += 1
        rows, cols = -(-in_h // strides[layer]), -(-in_w // strides[layer])  # ceil division
        ys, xs = np.mgrid[0:rows, 0:cols]
        cx = (xs.ravel() + params.get("anchor_offset_x", 0.5)) / cols
        cy = (ys.ravel() + params.get("anchor_offset_y", 0.5)) / rows
        wh = np.ones((len(sizes), 2)) if params.get("fixed_anchor_size") else np.array(sizes)
        grid = np.repeat(np.stack([cx, cy], 1), len(sizes), axis=0)  # anchors of a cell adjacent
        anchors.append(np.concatenate([grid, np.tile(wh, (rows * cols, 1))], axis=1))
        layer = last
    out = np.concatenate(anchors).astype(np.float32)
    if "num_anchors" in params and len(out) != params["num_anchors"]:
        raise InputError(f"the anchor settings give {len(out)} anchors, the manifest says {params['num_anchors']}")
    return out


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, decode: dict) -> tuple[np.ndarray, np.ndarray]:
    """Regressor outputs (N, num_coords) -> boxes (N, 4) ``x1, y1, x2, y2`` and keypoints (N, K, 2),
    fractions of the input: centre = anchor centre + offset / scale * anchor size, likewise sizes."""
    raw = np.asarray(raw, np.float64).reshape(len(anchors), -1)
    centre, size = anchors[:, None, :2].astype(np.float64), anchors[:, None, 2:].astype(np.float64)
    o, k = decode.get("box_coord_offset", 0), decode.get("num_keypoints", 0)
    ko, step = decode.get("keypoint_coord_offset", 4), decode.get("num_values_per_keypoint", 2)
    # Pairs of values: box centre, box size, then each keypoint (each pair x, y or y, x).
    starts = [o, o + 2, *(ko + i * step for i in range(k))]
    pairs = np.stack([raw[:, i:i + 2] for i in starts], axis=1)
    # MediaPipe's default order is y, x (h, w); the manifest names the order in box_format.
    if not decode.get("reverse_output_order", decode.get("box_format", "").startswith("x")):
        pairs = pairs[:, :, ::-1]
    xy_scale = np.array([decode["x_scale"], decode["y_scale"]])
    wh_scale = np.array([decode["w_scale"], decode["h_scale"]])
    points = pairs[:, [0, *range(2, 2 + k)]] / xy_scale * size + centre  # box centre and keypoints
    wh = pairs[:, 1] / wh_scale * size[:, 0]
    boxes = np.concatenate([points[:, 0] - wh / 2, points[:, 0] + wh / 2], axis=1)
    return boxes, points[:, 1:]


def decode_scores(raw_scores: np.ndarray, decode: dict) -> np.ndarray:
    """Classifier logits -> scores: clipped to +-``score_clipping_thresh``, then a sigmoid."""
    s = np.asarray(raw_scores, np.float64).reshape(-1)
    if "score_clipping_thresh" in decode:
        s = np.clip(s, -decode["score_clipping_thresh"], decode["score_clipping_thresh"])
    return 1 / (1 + np.exp(-s)) if decode.get("sigmoid_score") else s


def blazeface(outputs: Sequence[np.ndarray], postprocess: dict, *, min_score: float | None = None,
              anchors: np.ndarray | None = None) -> list[Detection]:
    """Faces from BlazeFace's two outputs (regressors (1, N, 16), classificators (1, N, 1)),
    following the manifest's ``postprocess``: decode, keep ``score >= min_score``, then NMS.
    Boxes and keypoints are fractions of the (letterboxed) model input.

    >>> from edgekit import datasets, load, preprocess, zoo
    >>> x, _ = preprocess(datasets.sample_image("astronaut"), "face-detector")
    >>> faces = blazeface(load("face-detector")(x), zoo.entry("face-detector").postprocess)
    >>> len(faces), round(faces[0].score, 2), len(faces[0].keypoints)
    (1, 0.92, 6)
    """
    decode, suppress = postprocess["decode"], postprocess.get("nms", {})
    anchors = ssd_anchors(postprocess["anchors"]) if anchors is None else anchors
    regressors, scores = outputs
    s = decode_scores(scores, decode)
    threshold = decode.get("min_score_thresh") if min_score is None else min_score
    # Only anchors that can pass the threshold are decoded (both NMS variants drop the rest anyway):
    # a frame has a handful of candidates among 896 anchors, so this is most of the work saved.
    keep = np.flatnonzero(s >= threshold) if threshold is not None else np.arange(len(s))
    if not len(keep):
        return []
    raw = np.asarray(regressors).reshape(len(anchors), -1)[keep]
    boxes, keypoints = decode_boxes(raw, anchors[keep], decode)
    s = s[keep]
    iou_threshold = suppress.get("min_suppression_threshold", 0.3)
    if suppress.get("algorithm", "weighted") == "weighted":
        return weighted_nms(boxes, s, iou_threshold, keypoints=keypoints, score_threshold=threshold)
    kept = nms(boxes, s, iou_threshold, threshold)
    return [Detection(tuple(map(float, boxes[i])), float(s[i]), keypoints=tuple(map(tuple, keypoints[i].tolist())))
            for i in kept]


def _frame(frame: np.ndarray, inplace: bool) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype.name}{list(frame.shape)}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InputError(f"drawing needs a BGR uint8 frame (H, W, 3), got {got}; draw on the photo, "
                         "not on the model input (load_image(path, color='bgr'))")
    return frame if inplace else frame.copy()


def draw_label(frame: np.ndarray, text: str, origin: tuple[float, float], *, color: tuple[int, int, int] = (0, 200, 0),
               inplace: bool = False) -> np.ndarray:
    """Write ``text`` on a filled box whose bottom-left corner is ``origin`` (kept inside the frame).

    >>> bool(draw_label(np.zeros((40, 120, 3), np.uint8), "face 0.92", (0, 20)).any())
    True
    """
    import cv2

    out = _frame(frame, inplace)
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (tw, th), base = cv2.getTextSize(text, font, size, thick)
    x = int(min(max(origin[0], 0), max(out.shape[1] - tw, 0)))
    y = int(min(max(origin[1], th + base), out.shape[0]))
    cv2.rectangle(out, (x, y - th - base), (x + tw, y), color, cv2.FILLED)
    # Black or white text, whichever stands out on the box colour (luma of a BGR colour).
    ink = (0, 0, 0) if 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2] > 128 else (255, 255, 255)
    cv2.putText(out, text, (x, y - base), font, size, ink, thick, cv2.LINE_AA)
    return out


def draw_detections(frame: np.ndarray, detections: Sequence[Detection], labels: Sequence[str] | None = None, *,
                    color: tuple[int, int, int] = (0, 200, 0), inplace: bool = False) -> np.ndarray:
    """Boxes, keypoints and ``label score`` captions on a BGR frame (in the frame's pixels).

    >>> out = draw_detections(np.zeros((64, 64, 3), np.uint8), [Detection((8, 8, 40, 40), 0.9)], ["face"])
    >>> int(out[8, 20, 1])  # the top edge of the box, green
    200
    """
    import cv2

    out = _frame(frame, inplace)
    for d in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        for px, py in d.keypoints:
            cv2.circle(out, (int(round(px)), int(round(py))), 2, (0, 0, 255), cv2.FILLED)
        name = labels[d.label] if labels is not None else str(d.label)
        draw_label(out, f"{name} {d.score:.2f}", (x1, y1), color=color, inplace=True)
    return out


def draw_fps(frame: np.ndarray, fps: float, *, inplace: bool = False) -> np.ndarray:
    """Write ``FPS 29.7`` in the top-left corner of a BGR frame.

    >>> bool(draw_fps(np.zeros((40, 120, 3), np.uint8), 29.7).any())
    True
    """
    return draw_label(frame, f"FPS {fps:.1f}", (0, 0), color=(40, 40, 40), inplace=inplace)
