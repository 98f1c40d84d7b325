"""edgekit.vision.image against references: OpenCV calls, per-pixel Python loops, and the definition of a Transform."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgekit as ek
from edgekit.runtime import datasets
from edgekit.vision.image import (Transform, batch, center_crop, letterbox, load_image, normalize, resize, to_nchw, to_nhwc,
                           unletterbox_boxes)


def photo(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)



@pytest.mark.parametrize("color", ["rgb", "bgr", "gray"])
def test_load_image_matches_cv2_imread(color):
    path = datasets.sample_images()["chelsea"]
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    want = {"rgb": bgr[:, :, ::-1], "bgr": bgr, "gray": cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)}[color]
    got = load_image(path, color)
    assert got.dtype == np.uint8 and np.array_equal(got, want), f"{color}: {got.shape} vs {want.shape}"


def test_load_image_errors_teach(tmp_path):
    # missing: an ImageNotFoundError, so also a FileNotFoundError (and an InputError)
    with pytest.raises(ek.ImageNotFoundError, match=r"no image file .*nope\.png.*sample_images\(\)") as info:
        load_image(tmp_path / "nope.png")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ek.InputError)
    # there but not an image (a folder, junk, an empty file): an InputError, not a FileNotFoundError
    with pytest.raises(ek.InputError, match=r"is a folder; expected an image file in it") as info:
        load_image(tmp_path)
    assert not isinstance(info.value, FileNotFoundError), type(info.value)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    with pytest.raises(ek.InputError, match=r"junk\.png \(13 bytes\) could not be decoded as an image") as info:
        load_image(junk)
    assert not isinstance(info.value, FileNotFoundError), type(info.value)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ek.InputError, match=r"empty\.jpg \(0 bytes\) could not be decoded"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ek.InputError, match="color must be one of"):
        load_image(junk, color="RGB")
    unicode = tmp_path / "fotó ☕.png"  # imread(path) fails on such names on Windows
    cv2.imencode(".png", np.full((4, 5, 3), 7, np.uint8))[1].tofile(unicode)
    assert load_image(unicode).shape == (4, 5, 3)


def test_one_list_of_image_files_for_evaluation_and_folder_videos(tmp_path):
    """An evaluation set and a folder:// video take the same files from a folder: every suffix OpenCV reads."""
    from edgekit.deploy.evaluation import load_dataset
    from edgekit.vision.image import IMAGE_SUFFIXES, image_files
    from edgekit.vision.video import VideoSource

    img = photo((12, 16, 3))
    for name in ("a.PNG", "b.jpeg", "c.webp", "d.tiff", "e.bmp"):
        assert cv2.imwrite(str(tmp_path / name), img), name
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "dir.png").mkdir()  # a folder named like an image is not one
    want = ["a.PNG", "b.jpeg", "c.webp", "d.tiff", "e.bmp"]
    assert [p.name for p in image_files(tmp_path)] == want
    assert {p.suffix.lower() for p in image_files(tmp_path)} <= set(IMAGE_SUFFIXES)
    x, _, name = load_dataset(str(tmp_path), ek.load("face-detector"))
    with VideoSource(f"folder://{tmp_path}") as video:
        frames = list(video)
    assert len(x) == len(frames) == 5 and name.startswith("5 images"), (x.shape, len(frames), name)


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "area"])
def test_resize_is_cv2_resize_with_height_width(interpolation):
    img = photo((37, 53, 3))
    flag = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
    assert np.array_equal(resize(img, (20, 30), interpolation), cv2.resize(img, (30, 20), interpolation=flag[interpolation]))
    assert resize(img[:, :, :1], 16).shape == (16, 16, 1)  # the channel axis survives
    with pytest.raises(ek.InputError, match="interpolation must be one of"):
        resize(img, 8, "bilinear")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(8, 160), st.integers(8, 160))
def test_letterbox_fits_centres_and_pads(h, w, th, tw):
    img = np.full((h, w, 3), 200, np.uint8)
    out, t = letterbox(img, (th, tw), pad_value=(1, 2, 3))
    rows, cols = np.nonzero(out[:, :, 0] == 200)  # where the photo landed
    top, left, nh, nw = rows.min(), cols.min(), rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()
    s = min(th / h, tw / w)
    assert out.shape == (th, tw, 3) and (nh == th or nw == tw), f"{h}x{w} -> {nh}x{nw} inside {th}x{tw}"
    assert abs(nh - h * s) <= 0.5 + 1e-9 or nh == 1, f"height {nh}, expected {h * s:.2f}: aspect ratio not kept"
    assert abs(nw - w * s) <= 0.5 + 1e-9 or nw == 1, f"width {nw}, expected {w * s:.2f}: aspect ratio not kept"
    assert abs(left - (tw - nw - left)) <= 1 and abs(top - (th - nh - top)) <= 1, f"not centred: {top=} {left=}"
    assert (t.offset_x, t.offset_y, t.scale_x, t.scale_y) == (left, top, nw / w, nh / h), t
    assert (out[:, :, 0] == 200).sum() == nh * nw and (out[out[:, :, 0] != 200] == (1, 2, 3)).all(), "bad padding"


def test_transform_composition_is_applying_one_then_the_other():
    resize_ = Transform(0.5, 0.25, 0.0, 0.0, (400, 800), (100, 400))
    crop = Transform(1.0, 1.0, -10.0, -20.0, (100, 400), (64, 64))
    both = resize_.then(crop)
    p = np.array([[37.0, 91.0], [800.0, 400.0]])
    step = (p * (0.5, 0.25)) * (1.0, 1.0) + (-10.0, -20.0)
    assert both.source_size == (400, 800) and both.target_size == (64, 64)
    assert np.allclose(both.to_source(step), p), f"{both.to_source(step)} vs {p}"


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 400), st.integers(2, 400), st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_unletterbox_inverts_the_letterbox(h, w, fr):
    _, t = letterbox(np.zeros((h, w), np.uint8), 128)
    box = np.array([[fr[0] * w, fr[1] * h, fr[2] * w, fr[3] * h]])
    forward = box * np.tile([t.scale_x, t.scale_y], 2) + np.tile([t.offset_x, t.offset_y], 2)  # the definition
    back = unletterbox_boxes(forward, t, clip=False)
    assert np.allclose(back, box, atol=1e-9), f"{box} -> {forward} -> {back}"
    assert np.allclose(unletterbox_boxes(forward / 128, t, normalized=True, clip=False), box, atol=1e-9)


def test_center_crop_normalize_layouts_and_batch():
    img = photo((9, 12, 3))
    assert np.array_equal(center_crop(img, (4, 6)), img[2:6, 3:9])
    with pytest.raises(ek.InputError, match="cannot crop 10x4 out of a 9x12 image"):
        center_crop(img, (10, 4))
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]
    want = np.empty(img.shape, np.float32)
    for r in range(9):  # the per-pixel reference
        for c in range(12):
            for ch in range(3):
                want[r, c, ch] = (np.float32(img[r, c, ch]) - np.float32(mean[ch])) / np.float32(std[ch])
    assert np.array_equal(normalize(img, mean, std), want)
    with pytest.raises(ek.InputError, match="mean has 2 values but the image has 3 channels"):
        normalize(img, [1, 2], 1)
    with pytest.raises(ek.InputError, match="std must not contain 0"):
        normalize(img, 0, [1, 0, 1])
    x = to_nchw(img)
    assert x.shape == (1, 3, 9, 12) and x.flags.c_contiguous and np.array_equal(x[0, 2], img[:, :, 2])
    assert np.array_equal(to_nhwc(x)[0], img) and to_nchw(img[:, :, 0]).shape == (1, 1, 9, 12)
    assert batch([x, x[0], x]).shape == (3, 3, 9, 12)
    with pytest.raises(ek.InputError, match=r"inputs of one shape.*\(3, 9, 12\).*\(3, 9, 13\)"):
        batch([x, to_nchw(photo((9, 13, 3)))])

