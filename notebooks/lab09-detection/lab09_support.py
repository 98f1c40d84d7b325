"""Lab 9 support: the photos, the model input (Lab 1's pre-processing) and the recorded model outputs.

The face detector's outputs for two photos were recorded once (ONNX Runtime 1.32, CPU) and ship
with the lab as ``lab09_<photo>.npy``: the checks use them, so every machine grades the same numbers.

>>> regressors, classificators = recorded("astronaut")
>>> regressors.shape, classificators.shape
((1, 896, 16), (1, 896, 1))
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).parent
PHOTOS = ("astronaut", "pair")


def photo(name: str) -> np.ndarray:
    """An RGB uint8 photo: ``"astronaut"`` (512x512), or ``"pair"`` (300x600: a crop of it next to its mirror image)."""
    from edgekit.runtime.datasets import sample_image

    astronaut = sample_image("astronaut")  # RGB
    if name == "astronaut":
        return astronaut
    if name == "pair":
        crop = astronaut[0:300, 80:380]
        return np.ascontiguousarray(np.concatenate([crop, crop[:, ::-1]], axis=1))
    raise KeyError(f"no photo {name!r}; the photos are {', '.join(PHOTOS)}")


def model_input(rgb: np.ndarray, size: int = 128) -> np.ndarray:
    """Lab 1's pre-processing for the face detector: letterbox (black bars), scale to [-1, 1], NCHW float32."""
    h, w = rgb.shape[:2]
    s = min(size / h, size / w)
    new_h, new_w = max(1, round(h * s)), max(1, round(w * s))
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top:top + new_h, left:left + new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    x = (canvas.astype(np.float32) - 127.5) / 127.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _find(file: str) -> Path:
    # The working directory first (the notebook's folder in Jupyter and when checking or grading),
    # then this module's folder.
    for folder in (Path.cwd(), HERE):
        if (folder / file).is_file():
            return folder / file
    raise FileNotFoundError(f"{file} is neither in {Path.cwd()} nor next to lab09_support.py; "
                            "copy it from the course's notebooks/ folder")


def recorded(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The recorded ``(regressors [1, 896, 16], classificators [1, 896, 1])`` for ``photo(name)``."""
    if name not in PHOTOS:
        raise KeyError(f"no recorded outputs for {name!r}; recorded: {', '.join(PHOTOS)}")
    both = np.load(_find(f"lab09_{name}.npy"))  # (896, 17): 16 regressor values, then the logit
    return both[None, :, :16].copy(), both[None, :, 16:].copy()


def recorded_output(name: str, which: str) -> np.ndarray:
    """One of the recorded outputs, ``"regressors"`` or ``"classificators"`` (the checks use it)."""
    regressors, classificators = recorded(name)
    return {"regressors": regressors, "classificators": classificators}[which]
