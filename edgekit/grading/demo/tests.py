"""Tests of the demo lab. Public cases ship to students (with expected values); hidden ones do not."""

import numpy as np

from edgekit.grading import call, case, close, equal

rng = np.random.default_rng(0)

case("q1", "three logits", call("softmax", np.array([1.0, 2.0, 3.0])), close(atol=1e-6), public=True)
case("q1", "huge logits do not overflow", call("softmax", np.array([1000.0, 1001.0, 1002.0])), close(atol=1e-6))
case("q1", "a batch: one softmax per row", call("softmax", rng.normal(size=(4, 10)) * 5), close(atol=1e-6), weight=2)

image = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
case("q2", "layout and scale", call("to_nchw", image), close(atol=1e-6), public=True)
case("q2", "a 1x1 image", call("to_nchw", np.full((1, 1, 3), 255, np.uint8)), close(atol=1e-6))
case("q2", "dtype is float32", lambda ns: str(ns.to_nchw(image).dtype), equal())

probs = np.array([0.1, 0.5, 0.05, 0.3, 0.05])
case("q3", "top-2", call("top_k", probs, 2), equal(), public=True)
case("q3", "k = all classes, best first", call("top_k", probs[::-1].copy(), 5), equal())
case("q3", "k larger than the classes", call("top_k", probs, 9), equal())
