"""The zoo manifest, checksums, on-demand builds and their errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import edgekit as ek
from edgekit import _paths
from edgekit.runtime import zoo

REQUIRED_KEYS = {"name", "file", "committed", "sha256", "bytes", "licence", "task", "description",
                 "provenance", "build", "inputs", "outputs", "preprocess", "reference"}


def test_manifest_entries_are_complete():
    data = json.loads((zoo.models_dir() / "manifest.json").read_text())
    assert data["schema_version"] == 1
    names = [m["name"] for m in data["models"]]
    assert {"digits-cnn", "face-detector", "efficientnet-lite0", "mobilenetv2-224", "resnet18-224"} <= set(names)
    for m in data["models"]:
        missing = REQUIRED_KEYS - set(m)
        assert not missing, f"{m['name']} lacks {missing}"
        assert len(m["sha256"]) == 64 and m["bytes"] > 0
        assert (zoo.models_dir() / m["build"]["script"]).is_file(), f"{m['name']}: no build script"
        assert m.get("labels") or m.get("labels_file") or m["task"] != "classification"


@pytest.mark.parametrize("name", [n for n, e in zoo.manifest().items() if e.committed])
def test_committed_models_match_manifest_and_load(name):
    e = zoo.entry(name)
    file = zoo.location(name)
    assert zoo.file_sha256(file) == e.sha256 and file.stat().st_size == e.bytes
    m = ek.load(name)
    assert [s.name for s in m.inputs] == [i["name"] for i in e.inputs]
    assert [list(s.shape) for s in m.inputs] == [i["shape"] for i in e.inputs]
    assert zoo.verify(name).ok


def test_labels():
    assert zoo.labels("digits-cnn") == [str(i) for i in range(10)]
    imagenet = zoo.labels("efficientnet-lite0")
    assert len(imagenet) == 1000 and "espresso" in imagenet[967]


def test_unknown_name_suggests():
    with pytest.raises(ek.ZooError, match=r"no zoo model 'resnet-18'.*did you mean 'resnet18-224'"):
        zoo.entry("resnet-18")


def test_corrupt_committed_copy_is_caught(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(zoo.models_dir(), models, ignore=shutil.ignore_patterns("__pycache__"))
    onnx_file = models / "digits-cnn.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-10] ^= 0xFF  # flip one byte
    onnx_file.write_bytes(bytes(data))
    monkeypatch.setenv("EDGEKIT_MODELS_DIR", str(models))
    with pytest.raises(ek.ZooError, match=r"does not match the manifest.*git checkout -- models/digits-cnn.onnx"):
        ek.load("digits-cnn")
    result = zoo.verify("digits-cnn")
    assert not result.ok and "corrupt" in result.detail
    onnx_file.unlink()
    with pytest.raises(ek.ZooError, match="missing from this checkout"):
        ek.load("digits-cnn")


def test_on_demand_model_builds_into_cache_and_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ek.ZooError, match="edgekit models build mobilenetv2-224"):
        zoo.path("mobilenetv2-224", build=False)
    unbuilt = zoo.verify("mobilenetv2-224")
    assert unbuilt.ok and "not built" in unbuilt.detail  # an optional model not built is no failure
    m = ek.load("mobilenetv2-224")  # builds on first use
    e = zoo.entry("mobilenetv2-224")
    assert zoo.file_sha256(m.path) == e.sha256, "synthetic build is not byte-identical to the manifest"
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    (logits,) = m(x)
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()
    assert zoo.verify("mobilenetv2-224").ok


def test_failed_build_explains(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(zoo.models_dir(), models, ignore=shutil.ignore_patterns("__pycache__"))
    (models / "build" / "synthetic.py").write_text("import sys\nprint('numpy is not installed: pip install numpy', file=sys.stderr)\nsys.exit(3)\n")
    monkeypatch.setenv("EDGEKIT_MODELS_DIR", str(models))
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ek.ZooError, match=r"a build dependency is missing: numpy is not installed: pip install numpy"):
        ek.load("resnet18-224")


def test_missing_manifest_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(_paths, "PACKAGE", tmp_path / "edgekit")  # no _models/ beside it, no models/ above it
    with pytest.raises(ek.ZooError, match="manifest was not found.*EDGEKIT_MODELS_DIR"):
        zoo.models_dir()
