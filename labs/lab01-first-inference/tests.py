"""Tests of Lab 1: the student's arrays are compared with the reference solution's, computed by the grader.

Photos are built inside the student's process from the bundled images (obj(...)), so the
grader does not send megabytes; public cases use small arrays so the checks file stays small.
"""

import cv2
import numpy as np

from edgekit.runtime import zoo
from edgekit.runtime.datasets import digits
from edgekit.grading import call, case, close, equal, obj

rng = np.random.default_rng(1)


def photo(name, color="bgr"):
    return obj("edgekit.runtime.datasets:sample_image", name, color=color)


def image(h, w):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# -- q1: BGR HWC uint8 -> RGB NCHW float32 ---------------------------------------------------------
small = image(2, 3)
case("q1", "a 2x3 image", call("to_nchw_rgb", small), close(atol=1e-6, dtype=True), public=True)
case("q1", "a blue pixel lands in the last (B) plane", call("to_nchw_rgb", np.array([[[255, 0, 0]]], np.uint8)),
     close(atol=1e-6))
case("q1", "a tall 5x2 image", call("to_nchw_rgb", image(5, 2)), close(atol=1e-6))
case("q1", "dtype is float32", lambda ns: str(ns.to_nchw_rgb(small).dtype), equal())
case("q1", "a 300x451 photo", call("to_nchw_rgb", photo("chelsea")), close(atol=1e-6), weight=2)

# -- q2: per-channel normalisation ---------------------------------------------------------------------
FACE = [127.5, 127.5, 127.5]
IMAGENET_MEAN, IMAGENET_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
x_small = rng.uniform(0, 255, size=(1, 3, 2, 4)).astype(np.float32)
x_w3 = rng.uniform(0, 255, size=(1, 3, 4, 3)).astype(np.float32)
case("q2", "face-detector: 127.5 / 127.5", call("normalize", x_small, FACE, FACE), close(atol=1e-5), public=True)
case("q2", "ImageNet mean/std on an image 3 pixels wide (per channel, not per column)",
     call("normalize", x_w3, IMAGENET_MEAN, IMAGENET_STD), close(atol=1e-5), weight=2)
case("q2", "one grey channel, one value", call("normalize", rng.uniform(0, 255, (1, 1, 8, 8)).astype(np.float32),
                                                 [0.0], [255.0]), close(atol=1e-6))
case("q2", "a batch of two", call("normalize", rng.uniform(0, 255, (2, 3, 5, 6)).astype(np.float32),
                                   IMAGENET_MEAN, IMAGENET_STD), close(atol=1e-5))
case("q2", "dtype is float32", lambda ns: str(ns.normalize(x_small, IMAGENET_MEAN, IMAGENET_STD).dtype), equal())

# -- q3: letterbox --------------------------------------------------------------------------------------
case("q3", "geometry: the cat photo into 128x128", call("letterbox_geometry", 300, 451, (128, 128)), equal(),
     public=True)
case("q3", "geometry: portrait", call("letterbox_geometry", 451, 300, (128, 128)), equal())
case("q3", "geometry: square into square (no padding)", call("letterbox_geometry", 512, 512, (128, 128)), equal())
case("q3", "geometry: a wide target (96, 160)", call("letterbox_geometry", 480, 640, (96, 160)), equal())
case("q3", "geometry: enlarging a small image", call("letterbox_geometry", 20, 30, (64, 64)), equal())
case("q3", "geometry: a 1-pixel-high strip keeps 1 row", call("letterbox_geometry", 1, 1000, (128, 128)), equal())
tiny = image(6, 10)
case("q3", "letterbox a 6x10 image into 8x8", call("letterbox", tiny, (8, 8)), close(atol=1), public=True)
case("q3", "letterbox the cat photo into 128x128", call("letterbox", photo("chelsea", "rgb"), (128, 128)),
     close(atol=1), weight=2)
case("q3", "letterbox a portrait image into (32, 48), grey padding 114",
     call("letterbox", image(40, 24), (32, 48), 114), close(atol=1), weight=2)
case("q3", "letterbox keeps uint8", lambda ns: str(ns.letterbox(tiny, (8, 8)).dtype), equal())

# -- q4: the pipeline from a manifest entry ---------------------------------------------------------
tiny_spec = {"size": [8, 8], "pad_value": 0, "mean": FACE, "std": FACE}
face_spec = dict(zoo.entry("face-detector").preprocess)
grey_pad_spec = {"size": [32, 48], "pad_value": 114, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
case("q4", "a 6x10 image, 8x8 letterbox spec", call("preprocess", tiny, tiny_spec), close(atol=0.01, dtype=True), public=True)
case("q4", "face-detector spec, square photo", call("preprocess", photo("astronaut"), face_spec), close(atol=0.01))
case("q4", "face-detector spec, the cat: padding must be -1", call("preprocess", photo("chelsea"), face_spec),
     close(atol=0.01), weight=2)
case("q4", "padding 114 with ImageNet mean/std, portrait into (32, 48)",
     call("preprocess", image(40, 24), grey_pad_spec), close(atol=0.02), weight=2)

# -- q5: softmax, top-k, a scanned digit ---------------------------------------------------------
case("q5", "softmax of three logits", call("softmax", np.array([1.0, 2.0, 3.0])), close(atol=1e-6), public=True)
case("q5", "softmax of huge logits", call("softmax", np.array([1000.0, 1001.0, 1002.0])), close(atol=1e-6))
case("q5", "softmax of a batch: one per row", call("softmax", rng.normal(size=(4, 10)) * 5), close(atol=1e-6))
probs = np.array([0.1, 0.5, 0.05, 0.3, 0.05])
case("q5", "top-2 labels", call("top_k", probs, list("abcde"), 2), equal(), public=True)
case("q5", "ties: smaller index first", call("top_k", np.array([0.2, 0.3, 0.2, 0.3]), ["w", "x", "y", "z"], 4),
     equal())
case("q5", "k larger than the classes", call("top_k", probs, list("abcde"), 9), equal())

x_test, _ = digits(split="test")


def scan(index, h=32, w=32):
    ink = np.rint(x_test[index, 0] * 255).astype(np.uint8)
    return cv2.resize(255 - ink, (w, h), interpolation=cv2.INTER_NEAREST)


printed = np.full((64, 64), 255, np.uint8)
cv2.putText(printed, "7", (14, 54), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 0, 6, cv2.LINE_AA)
model = obj("edgekit:load", "digits-cnn")
case("q5", "a 32x32 scan", call("read_digit", model, scan(0), 3), equal(dtype=True), public=True)
case("q5", "a 48x40 scan", call("read_digit", model, scan(7, 48, 40), 3), equal(), weight=2)
case("q5", "a 24x24 scan, k=1", call("read_digit", model, scan(42, 24, 24), 1), equal())
case("q5", "a printed 7, k=2", call("read_digit", model, printed, 2), equal(), weight=2)
