"""Bundled data: the fixed digits split against scikit-learn's loader (oracle) when available."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.runtime import datasets


def test_digits_split_is_fixed_stratified_and_disjoint():
    x_test, y_test = datasets.digits(split="test")
    x_train, y_train = datasets.digits(split="train")
    x_all, y_all = datasets.digits(split="all")
    assert x_test.shape == (364, 1, 8, 8) and x_train.shape == (1433, 1, 8, 8) and x_all.shape == (1797, 1, 8, 8)
    assert x_test.dtype == np.float32 and y_test.dtype == np.int64
    assert 0.0 == x_all.min() and x_all.max() == 1.0
    counts = np.bincount(y_test)
    assert counts.min() >= 35 and counts.max() <= 37, f"test split not stratified: {counts}"
    assert len(y_test) + len(y_train) == len(y_all)


def test_digits_equal_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    d = sk.load_digits()
    x, y = datasets.digits(split="all")
    np.testing.assert_array_equal(x.reshape(-1, 64) * 16, d.data.astype(np.float32))
    np.testing.assert_array_equal(y, d.target)


def test_bad_split_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"one of \('train', 'test', 'all'\), got 'val'"):
        datasets.digits(split="val")


def test_sample_images_rgb_and_bgr():
    assert set(datasets.sample_images()) == {"astronaut", "chelsea", "coffee", "rocket"}
    rgb = datasets.sample_image("coffee")
    bgr = datasets.sample_image("coffee", color="bgr")
    assert rgb.dtype == np.uint8 and rgb.ndim == 3
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])
    with pytest.raises(ValueError, match="available: astronaut"):
        datasets.sample_image("dog")
