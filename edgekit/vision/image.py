"""Image operations: load, resize, letterbox, crop, normalise, and the layouts models want.

Conventions: images are numpy arrays, HWC (height, width, channels), uint8, in the colour order
their name says (``load_image`` returns RGB unless asked otherwise; OpenCV itself works in BGR).
Sizes are ``(height, width)``, as in numpy shapes and the zoo manifest. Box coordinates are
continuous pixels (pixel ``i`` covers ``[i, i + 1)``), ``x1, y1, x2, y2``.

Every resize, crop and pad is an affine map ``target = source * scale + offset`` per axis; a
:class:`Transform` records it, so boxes found in the model input can be mapped back to the photo.
:func:`edgekit.vision.preprocessing.preprocess` chains these steps as a zoo manifest says.

>>> boxed, t = letterbox(np.zeros((300, 451, 3), np.uint8), 128)   # keep the aspect ratio, pad
>>> to_nchw(normalize(boxed, 127.5, 127.5)).shape, t.offset_y
((1, 3, 128, 128), 21.0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._errors import ImageNotFoundError, InputError

COLORS = ("rgb", "bgr", "gray")
# The files edgekit takes for images in a folder (evaluation sets, folder:// video sources): what OpenCV decodes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3}  # cv2.INTER_* values


@dataclass(frozen=True)
class Transform:
    """Where preprocessing moved the pixels: ``target = source * scale + offset`` (x and y apart).

    ``source_size`` and ``target_size`` are ``(height, width)`` of the photo and the model input.
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    source_size: tuple[int, int]
    target_size: tuple[int, int]

    def then(self, other: "Transform") -> "Transform":
        """This transform followed by ``other`` (e.g. a resize, then a crop)."""
        return Transform(self.scale_x * other.scale_x, self.scale_y * other.scale_y,
                         self.offset_x * other.scale_x + other.offset_x,
                         self.offset_y * other.scale_y + other.offset_y,
                         self.source_size, other.target_size)

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` x, y points from the model input back to the photo."""
        p = np.asarray(points, np.float64)
        return np.stack([(p[..., 0] - self.offset_x) / self.scale_x,
                         (p[..., 1] - self.offset_y) / self.scale_y], axis=-1)


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if len(size) != 2 or min(size) < 1:
        raise InputError(f"size must be (height, width) of positive ints or one int, got {size!r}")
    return int(size[0]), int(size[1])


def _check_image(img: Any, what: str = "image") -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
        got = f"{img.dtype.name}{list(img.shape)}" if isinstance(img, np.ndarray) else type(img).__name__
        raise InputError(f"{what} must be an HWC array with 1 or 3 channels (or HW grey), got {got}. "
                         "Load one with edgekit.vision.image.load_image(path); drop an alpha channel with img[..., :3]")
    if img.size == 0:
        raise InputError(f"{what} is empty (shape {img.shape})")
    return img


def load_image(path: str | os.PathLike, color: str = "rgb") -> np.ndarray:
    """Read an image file as uint8 HWC in ``color`` order: ``"rgb"`` (default), ``"bgr"`` or ``"gray"`` (HW).

    >>> from edgekit.runtime.datasets import sample_images
    >>> load_image(sample_images()["chelsea"]).shape
    (300, 451, 3)
    """
    import cv2

    if color not in COLORS:
        raise InputError(f"color must be one of {COLORS}, got {color!r}")
    path = Path(path)
    if path.is_dir():  # there, so not a FileNotFoundError (nor is a file that does not decode, below)
        raise InputError(f"{str(path)!r} is a folder; expected an image file in it, e.g. {str(path / 'photo.jpg')!r}")
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ImageNotFoundError(f"no image file {str(path)!r}{where}; expected a {'/'.join(IMAGE_SUFFIXES)} file. "
                                 "Bundled photos: edgekit.runtime.datasets.sample_images()")
    # imdecode of the bytes, not imread(path): imread cannot open non-ASCII paths on Windows.
    flag = cv2.IMREAD_GRAYSCALE if color == "gray" else cv2.IMREAD_COLOR
    data = np.fromfile(path, np.uint8)
    img = cv2.imdecode(data, flag) if data.size else None  # imdecode asserts on empty input
    if img is None:
        raise InputError(f"{path} ({path.stat().st_size} bytes) could not be decoded as an image; "
                         "expected a file OpenCV reads (png, jpg, bmp, webp, tiff). Is it really an image?")
    # OpenCV decodes to BGR; everything else in edgekit (and most models) wants RGB.
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if color == "rgb" else img


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files in ``folder`` (an :data:`IMAGE_SUFFIXES` suffix, any case), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def resize(img: np.ndarray, size: int | Sequence[int], interpolation: str = "linear") -> np.ndarray:
    """Resize to ``size = (height, width)``, ignoring the aspect ratio.

    >>> resize(np.zeros((300, 451, 3), np.uint8), (224, 112)).shape
    (224, 112, 3)
    """
    import cv2

    h, w = _size(size)
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}")
    out = cv2.resize(_check_image(img), (w, h), interpolation=INTERPOLATIONS[interpolation])  # cv2 wants (w, h)
    return out.reshape(h, w, *img.shape[2:])  # cv2 drops a trailing channel axis of 1


def letterbox(img: np.ndarray, size: int | Sequence[int], pad_value: float | Sequence[float] = 0,
              interpolation: str = "linear") -> tuple[np.ndarray, Transform]:
    """Scale to fit inside ``size`` keeping the aspect ratio, centre, pad the rest with ``pad_value``.

    >>> boxed, t = letterbox(np.full((50, 100, 3), 255, np.uint8), 64)
    >>> boxed.shape, t.scale_x, (t.offset_x, t.offset_y), int(boxed[0, 0, 0]), int(boxed[32, 0, 0])
    ((64, 64, 3), 0.64, (0.0, 16.0), 0, 255)
    """
    th, tw = _size(size)
    h, w = _check_image(img).shape[:2]
    s = min(th / h, tw / w)
    nh, nw = min(th, max(1, round(h * s))), min(tw, max(1, round(w * s)))
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.empty((th, tw, *img.shape[2:]), img.dtype)
    canvas[...] = pad_value
    canvas[top:top + nh, left:left + nw] = resize(img, (nh, nw), interpolation)
    # The scale actually applied is nw / w (after rounding), which is what cv2.resize uses too.
    return canvas, Transform(nw / w, nh / h, float(left), float(top), (h, w), (th, tw))


def unletterbox_boxes(boxes: np.ndarray, transform: Transform, *, normalized: bool = False,
                      clip: bool = True) -> np.ndarray:
    """Map ``(N, 4)`` boxes ``x1, y1, x2, y2`` from the model input back to the photo's pixels.

    Works for any :class:`Transform` (letterbox, crop, stretch). ``normalized=True``: the boxes are
    fractions of the model input (as SSD detectors give them). ``clip``: keep them inside the photo.

    >>> _, t = letterbox(np.zeros((50, 100, 3), np.uint8), 64)
    >>> unletterbox_boxes(np.array([[0.0, 16.0, 64.0, 48.0]]), t).tolist()
    [[0.0, 0.0, 100.0, 50.0]]
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 2, 2)
    if normalized:
        b = b * (transform.target_size[1], transform.target_size[0])
    out = transform.to_source(b).reshape(-1, 4)
    if clip:
        h, w = transform.source_size
        out = np.clip(out, 0, (w, h, w, h))
    return out


def center_crop(img: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """The central ``size = (height, width)`` window (a view: no pixels are copied).

    >>> center_crop(np.zeros((256, 341, 3), np.uint8), 224).shape
    (224, 224, 3)
    """
    ch, cw = _size(size)
    h, w = _check_image(img).shape[:2]
    if ch > h or cw > w:
        raise InputError(f"cannot crop {ch}x{cw} out of a {h}x{w} image; resize it first (resize or letterbox)")
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


def normalize(img: np.ndarray, mean: float | Sequence[float], std: float | Sequence[float]) -> np.ndarray:
    """``(img - mean) / std`` per channel, in float32.

    >>> normalize(np.array([[[0, 64, 255]]], np.uint8), 127.5, 127.5).tolist()
    [[[-1.0, -0.49803921580314636, 1.0]]]
    """
    m, s = np.float32(mean).reshape(-1, 1, 1), np.float32(std).reshape(-1, 1, 1)
    chw = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    for name, v in (("mean", m), ("std", s)):
        if v.size not in (1, len(chw)):
            raise InputError(f"{name} has {v.size} values but the image has {len(chw)} channels; give 1 or {len(chw)}")
    if not np.all(s != 0):
        raise InputError(f"std must not contain 0, got {s.ravel().tolist()}")
    # Channel-first: numpy broadcasts (C, 1, 1) over CHW ~10x faster than (C,) over HWC's short
    # last axis. The HWC result is a view of CHW memory, so to_nchw() afterwards copies nothing.
    out = (chw.astype(np.float32, order="C") - m) / s
    return out[0] if img.ndim == 2 else out.transpose(1, 2, 0)


def to_nchw(img: np.ndarray) -> np.ndarray:
    """HWC (or HW grey, or NHWC) -> NCHW with a batch axis, contiguous.

    >>> to_nchw(np.zeros((224, 224, 3), np.float32)).shape
    (1, 3, 224, 224)
    """
    x = np.asarray(img)
    x = x[:, :, None] if x.ndim == 2 else x
    x = x[None] if x.ndim == 3 else x
    if x.ndim != 4:
        raise InputError(f"to_nchw expects HW, HWC or NHWC, got shape {x.shape}")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """NCHW -> NHWC (contiguous), e.g. to look at a model input as images again.

    >>> to_nhwc(np.zeros((1, 3, 8, 6), np.float32)).shape
    (1, 8, 6, 3)
    """
    if np.ndim(x) != 4:
        raise InputError(f"to_nhwc expects NCHW (4 axes), got shape {np.shape(x)}")
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))


def batch(images: Sequence[np.ndarray]) -> np.ndarray:
    """Stack model inputs of one image each (``(1, C, H, W)`` or ``(C, H, W)``) into ``(N, C, H, W)``.

    >>> batch([np.zeros((1, 3, 4, 4), np.float32)] * 5).shape
    (5, 3, 4, 4)
    """
    items = [np.asarray(x) for x in images]
    if not items:
        raise InputError("batch() needs at least one image")
    items = [x[0] if x.ndim == 4 and x.shape[0] == 1 else x for x in items]
    shapes = {x.shape for x in items}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise InputError(f"batch() needs inputs of one shape (C, H, W) or (1, C, H, W), got {sorted(shapes)}; "
                         "preprocess every image with the same spec")
    return np.stack(items)
