"""Pre-processing throughput: ``edgekit.vision.preprocessing.preprocess`` (OpenCV) against a naive numpy version.

    python benchmarks/preprocess.py [--rounds 30] [--block 16] [--cv2-threads 1] [--out benchmarks/results/preprocess.json]

Two manifests: ``efficientnet-lite0`` (short side to 256, centre crop 224, (x - 127) / 128) and
``face-detector`` (letterbox to 128, (x - 127.5) / 127.5). The naive version does what a first
attempt in numpy does: bilinear resize by index arithmetic (cv2.INTER_LINEAR's half-pixel rule,
gathers and weights in float32), one channel at a time in a Python loop, then normalisation and
the NCHW copy per channel. Both run on the four bundled photos in turn; each round times one block
of images per variant, the variants' order alternating between rounds, so drift and other users
of the machine hit both alike. Figures are medians over rounds; the speed-up is computed per round,
then its median taken. OpenCV runs on ``--cv2-threads`` threads (default 1, like numpy here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

import edgekit as ek
from edgekit.runtime import datasets
from edgekit.runtime import zoo
from edgekit.vision.preprocessing import preprocess

MODELS = ("efficientnet-lite0", "face-detector")


def _axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights along one axis, as cv2.INTER_LINEAR computes them."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = (src - i0).astype(np.float32)
    frac[i0 < 0], i0[i0 < 0] = 0, 0  # before the first pixel: take the first
    frac[i0 >= n_in - 1], i0[i0 >= n_in - 1] = 0, n_in - 1  # past the last: take the last
    return i0, np.minimum(i0 + 1, n_in - 1), frac


def naive_resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    y0, y1, fy = _axis(h, img.shape[0])
    x0, x1, fx = _axis(w, img.shape[1])
    out = np.empty((h, w, img.shape[2]), np.float32)
    for c in range(img.shape[2]):  # one channel at a time
        ch = img[:, :, c].astype(np.float32)
        top = ch[y0][:, x0] * (1 - fx) + ch[y0][:, x1] * fx
        bottom = ch[y1][:, x0] * (1 - fx) + ch[y1][:, x1] * fx
        out[:, :, c] = top * (1 - fy)[:, None] + bottom * fy[:, None]
    return out


def naive_preprocess(rgb: np.ndarray, spec: dict) -> np.ndarray:
    th, tw = spec["size"]
    h, w = rgb.shape[:2]
    if spec["resize"] == "letterbox":
        s = min(th / h, tw / w)
        nh, nw = round(h * s), round(w * s)
        img = np.full((th, tw, 3), spec.get("pad_value", 0), np.float32)
        top, left = (th - nh) // 2, (tw - nw) // 2
        img[top:top + nh, left:left + nw] = naive_resize(rgb, nh, nw)
    else:
        s = spec["short_side"] / min(h, w)
        nh, nw = round(h * s), round(w * s)
        top, left = (nh - th) // 2, (nw - tw) // 2
        img = naive_resize(rgb, nh, nw)[top:top + th, left:left + tw]
    out = np.empty((1, 3, th, tw), np.float32)
    for c in range(3):  # normalise and lay out one channel at a time
        out[0, c] = (img[:, :, c] - spec["mean"][c]) / spec["std"][c]
    return out


def bench(name: str, photos: list[np.ndarray], rounds: int, block: int) -> dict:
    spec = zoo.entry(name).preprocess
    variants = {"edgekit": lambda img: preprocess(img, spec).input, "naive_numpy": lambda img: naive_preprocess(img, spec)}
    # The naive version rounds in float where OpenCV uses 11-bit fixed-point weights: compare first.
    diff = max(float(np.abs(variants["edgekit"](p) - variants["naive_numpy"](p)).max()) for p in photos)
    ips: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(rounds):
        for key in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            fn = variants[key]
            t = time.perf_counter()
            for i in range(block):
                fn(photos[i % len(photos)])
            ips[key].append(block / (time.perf_counter() - t))
    speedups = [a / b for a, b in zip(ips["edgekit"], ips["naive_numpy"])]
    return {"spec": spec, "max_abs_diff": diff,
            "images_per_s": {k: statistics.median(v) for k, v in ips.items()},
            "speedup": statistics.median(speedups), "speedup_range": [min(speedups), max(speedups)],
            "samples_images_per_s": ips}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results/preprocess.json")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--block", type=int, default=16, help="images per variant per round")
    p.add_argument("--cv2-threads", type=int, default=1, help="cv2.setNumThreads (-1: OpenCV's default, all cores)")
    args = p.parse_args()
    cv2.setNumThreads(args.cv2_threads)
    photos = [datasets.sample_image(n) for n in sorted(datasets.sample_images())]
    result = {"benchmark": "preprocess", "edgekit": ek.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
              "config": {"rounds": args.rounds, "block": args.block, "cv2_threads": cv2.getNumThreads(),
                         "photos": {n: list(im.shape) for n, im in zip(sorted(datasets.sample_images()), photos)}},
              "device": ek.device_info().to_dict(), "results": {}}
    print(f"{'manifest':<20} {'edgekit img/s':>14} {'naive img/s':>12} {'speed-up (range)':>22} {'max |diff|':>11}")
    for name in MODELS:
        res = bench(name, photos, args.rounds, args.block)
        result["results"][name] = res
        lo, hi = res["speedup_range"]
        print(f"{name:<20} {res['images_per_s']['edgekit']:>14.0f} {res['images_per_s']['naive_numpy']:>12.0f} "
              f"{res['speedup']:>9.1f}x ({lo:.1f}-{hi:.1f}) {res['max_abs_diff']:>11.4f}")
    print(f"medians of {args.rounds} rounds x {args.block} images, interleaved; OpenCV on {cv2.getNumThreads()} thread(s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
