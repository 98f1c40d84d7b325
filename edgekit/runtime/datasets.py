"""Small datasets that ship inside edgekit, so nothing is downloaded.

``digits`` is the UCI handwritten-digits set that scikit-learn bundles (1,797 images of
8x8 pixels, values 0..16), already in the input format of the zoo model ``digits-cnn``:
float32, shape ``(N, 1, 8, 8)``, scaled to [0, 1]. The split is fixed forever and stratified:
within each digit class, every fifth sample in file order (the 0th, 5th, 10th, ...) is in the
test split (364 images), all others in the train split (1,433). No random generator is involved,
so the split cannot change with a numpy version.

>>> x, y = digits(split="test")
>>> x.shape, x.dtype.name, y.shape
((364, 1, 8, 8), 'float32', (364,))
>>> sorted(sample_images())[:2]
['astronaut', 'chelsea']
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._errors import ConfigError
from .._paths import DATA

DATA_DIR = DATA  # edgekit/data
SPLITS = ("train", "test", "all")


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(DATA_DIR / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    return pixels, labels


def digits(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)``: ``x`` float32 ``(N, 1, 8, 8)`` in [0, 1], ``y`` int64 labels 0..9."""
    if split not in SPLITS:
        raise ConfigError(f"digits(split=...) expects one of {SPLITS}, got {split!r}")
    pixels, labels = _digits_raw()
    # rank[i] = how many earlier samples share sample i's label (0, 1, 2, ... per class)
    rank = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        members = labels == c
        rank[members] = np.arange(members.sum())
    test = rank % 5 == 0
    keep = {"test": test, "train": ~test, "all": np.ones_like(test)}[split]
    # The raw values are 0..16 (counts of set pixels in 4x4 blocks); the model wants [0, 1].
    x = (pixels[keep] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return x, labels[keep].copy()


def sample_images() -> dict[str, Path]:
    """Names and paths of the bundled photos (see ``edgekit/data/ATTRIBUTION.md``)."""
    return {p.stem: p for p in sorted((DATA_DIR / "images").iterdir()) if p.suffix in (".png", ".jpg")}


def sample_image(name: str, *, color: str = "rgb") -> np.ndarray:
    """Load a bundled photo as uint8 HWC, in ``color`` order ``"rgb"`` (default) or ``"bgr"``.

    >>> sample_image("chelsea").shape
    (300, 451, 3)
    """
    import cv2

    images = sample_images()
    if name not in images:
        raise ConfigError(f"no bundled image {name!r}; available: {', '.join(images)}")
    if color not in ("rgb", "bgr"):
        raise ConfigError(f"color must be 'rgb' or 'bgr', got {color!r}")
    bgr = cv2.imread(str(images[name]), cv2.IMREAD_COLOR)  # OpenCV always decodes to BGR
    return bgr if color == "bgr" else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
