"""edgekit.deploy.evaluation: accuracy and agreement against numpy / raw ONNX Runtime as the oracle."""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import edgekit as ek
from edgekit._errors import EdgekitError
from edgekit.deploy.evaluation import EvaluationError, agreement, evaluate, load_dataset, topk_accuracy
from edgekit.cli.optimize import register
from conftest import make_model, save


def matmul_model(path, w: np.ndarray, batch="batch"):
    """y = x @ w, x: float32[batch, rows of w]."""
    m = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, w.shape[0]])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, w.shape[1]])],
                   initializers=[numpy_helper.from_array(w.astype(np.float32), "w")])
    return save(m, path)


def oracle_topk(scores: np.ndarray, y: np.ndarray, k: int) -> float:
    """Plain-Python top-k: is the label among the k classes with the largest scores?"""
    hits = 0
    for row, label in zip(scores.tolist(), y.tolist()):
        best = sorted(range(len(row)), key=lambda c: -row[c])[:k]
        hits += label in best
    return hits / len(y)


def test_digits_accuracy_matches_raw_onnxruntime():
    x, y = ek.datasets.digits(split="test")
    sess = ort.InferenceSession(str(ek.zoo.path("digits-cnn")), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": x})[0]
    r = evaluate("digits-cnn", "digits", batch_size=50)  # batches of 50: 364 is not a multiple
    assert r.n == 364 and r.dataset == "digits:test"
    assert r.accuracy["top1"] == pytest.approx(oracle_topk(logits, y, 1)), (r.accuracy, oracle_topk(logits, y, 1))
    assert r.accuracy["top5"] == pytest.approx(oracle_topk(logits, y, 5)), r.accuracy
    assert r.agreement == {} and r.reference is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_topk_matches_plain_python(n, classes, seed):
    rng = np.random.default_rng(seed)
    scores, y = rng.standard_normal((n, classes)), rng.integers(0, classes, n)
    got = topk_accuracy(scores, y, top=(1, 3, 5))
    for k in (1, 3, 5):
        if k <= classes:
            assert got[f"top{k}"] == pytest.approx(oracle_topk(scores, y, k)), (k, got)
        else:
            assert f"top{k}" not in got


def test_ties_break_like_argmax():
    # quantized scores tie; top-1 must count what argmax picks (the first), not the label's favour
    scores, y = np.array([[1.0, 1.0, 0.0]]), np.array([1])
    assert topk_accuracy(scores, y, top=(1, 2)) == {"top1": 0.0, "top2": 1.0}


def test_agreement_against_numpy(tmp_path, rng):
    w1 = rng.standard_normal((4, 6))
    w2 = w1 + 0.1 * rng.standard_normal((4, 6))
    a, b = matmul_model(tmp_path / "a.onnx", w1), matmul_model(tmp_path / "b.onnx", w2)
    x = rng.standard_normal((17, 4)).astype(np.float32)
    r = evaluate(a, (x, None), reference=b, batch_size=5)
    ya, yb = (ort.InferenceSession(str(p)).run(None, {"x": x})[0].astype(np.float64) for p in (a, b))
    cos = (ya * yb).sum(1) / (np.linalg.norm(ya, axis=1) * np.linalg.norm(yb, axis=1))
    want = {"max_abs_diff": np.abs(ya - yb).max(), "mean_abs_diff": np.abs(ya - yb).mean(), "cosine": cos.mean(),
            "cosine_min": cos.min(), "top1_agreement": (ya.argmax(1) == yb.argmax(1)).mean()}
    for key, value in want.items():
        assert r.agreement[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, r.agreement[key], value)
    assert r.accuracy == {} and r.n == 17 and r.reference == "b"


def test_agreement_of_zero_outputs_and_shape_mismatch():
    zeros = np.zeros((2, 3))
    assert agreement(zeros, zeros)["cosine"] == 1.0
    assert agreement(zeros, np.ones((2, 3)))["cosine"] == 0.0
    with pytest.raises(EvaluationError, match="differ in shape"):
        agreement(zeros, np.zeros((2, 4)))


def test_fixed_batch_model_runs_one_at_a_time(tmp_path, rng):
    w = rng.standard_normal((3, 4))
    path = matmul_model(tmp_path / "fixed.onnx", w, batch=1)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = (x @ w.astype(np.float32)).argmax(1)
    assert evaluate(path, (x, y), top=(1,)).accuracy == {"top1": 1.0}


def test_datasets_npz_and_errors(tmp_path):
    x, y = ek.datasets.digits(split="test")
    np.savez(tmp_path / "d.npz", x=x[:10], y=y[:10])
    xs, ys, name = load_dataset(tmp_path / "d.npz")
    assert xs.shape == (10, 1, 8, 8) and list(ys) == list(y[:10]) and name == "d.npz"
    assert load_dataset("digits:train")[0].shape == (1433, 1, 8, 8)
    with pytest.raises(EdgekitError, match="digits:train"):
        load_dataset("mnist")
    np.savez(tmp_path / "bad.npz", inputs=x[:2])
    with pytest.raises(EvaluationError, match="expected 'x'"):
        load_dataset(tmp_path / "bad.npz")
    with pytest.raises(EvaluationError, match=r"shape \(N, classes\)"):
        topk_accuracy(np.zeros((3, 2, 2)), np.zeros(3, np.int64))


def test_bundled_photos_need_a_model_and_fit_its_input():
    m = ek.load("mobilenetv2-224")
    x, y, name = load_dataset("mobilenetv2-224", m)  # a zoo name: the bundled photos, preprocessed its way
    assert x.shape == (4, 3, 224, 224) and x.dtype == np.float32 and y is None and "photos" in name


def test_cli_eval_json(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "digits-cnn", "digits", "--reference", "digits-cnn", "--json"])
    assert args.func(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["agreement"]["top1_agreement"] == 1.0 and d["accuracy"]["top1"] == d["reference_accuracy"]["top1"]
