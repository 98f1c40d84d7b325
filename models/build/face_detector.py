"""Convert MediaPipe's BlazeFace (short range) face detector from TFLite to ONNX.

What: reads ``face_detection_short_range.tflite`` out of the ``mediapipe==0.10.18`` wheel (the
wheel is only unzipped, never installed: mediapipe is a heavy, platform-bound package), converts
it with the pure-Python ``tflite2onnx`` and writes the ONNX file to ``--out``.

The converted graph (tflite2onnx moves the layout to ONNX's NCHW):
    input           float32 [1, 3, 128, 128]   RGB, (x - 127.5) / 127.5, i.e. in [-1, 1]
    regressors      float32 [1, 896, 16]       per anchor: dx, dy, w, h, then 6 (x, y) keypoints
    classificators  float32 [1, 896, 1]        per anchor: a face logit (apply a sigmoid)

No TFLite interpreter is available here, so the check is behavioural: on the bundled
``astronaut.png`` the best anchor's face score must exceed 0.9, and it must decode to a box in the
upper half of the photo, using the anchor settings of MediaPipe's face_detection_short_range graph.

    python models/build/face_detector.py --out models/face-detector.onnx [--wheel W | --tflite T]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _contract import need  # import-or-exit-3, shared by the build scripts

ROOT = Path(__file__).resolve().parents[2]  # the repo root, so `import edgekit` works uninstalled
if (ROOT / "edgekit").is_dir():  # a source checkout (an installed edgekit imports anyway)
    sys.path.insert(0, str(ROOT))
MEDIAPIPE = "mediapipe==0.10.18"
MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
TFLITE_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
STRIDES = (8, 16, 16, 16)  # SsdAnchorsCalculator options of face_detection_short_range.pbtxt
SIZE = 128


def fetch_tflite(wheel: Path | None, tmp: Path) -> bytes:
    """The .tflite bytes, read from ``wheel`` or from a freshly downloaded mediapipe wheel."""
    if wheel is None:
        # Any platform's wheel carries the same model file; pin one so every host gets the same.
        cmd = [sys.executable, "-m", "pip", "download", MEDIAPIPE, "--no-deps", "-q",
               "-d", str(tmp), "--only-binary=:all:",
               "--platform", "manylinux_2_17_x86_64", "--python-version", "3.11"]
        if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
            print(f"could not download {MEDIAPIPE}: pip download {MEDIAPIPE} --no-deps, "
                  "then pass --wheel PATH", file=sys.stderr)
            sys.exit(3)
        wheel = next(tmp.glob("mediapipe-*.whl"))
    with zipfile.ZipFile(wheel) as zf:  # a wheel is a zip file
        return zf.read(MEMBER)


def canonical(model) -> bytes:
    """Serialize with initializers and value_info sorted by name.

    tflite2onnx collects them in Python sets, whose order changes with every process (string
    hashing is randomized), so its raw output differs from run to run in ordering only.
    """
    graph = model.graph
    for field in (graph.initializer, graph.value_info):
        ordered = sorted(field, key=lambda item: item.name)
        del field[:]
        field.extend(ordered)
    return model.SerializeToString()


def anchor_centres(np):
    """(896, 2) anchor centres (x, y) in [0, 1], as MediaPipe's SsdAnchorsCalculator makes them.

    Layers with equal strides share one grid: stride 8 -> 16x16 cells x 2 anchors, the three
    stride-16 layers -> 8x8 cells x 6 anchors. fixed_anchor_size means every anchor is 1x1, so
    only the centres matter: x = (col + 0.5) / cols.
    """
    centres = []
    for stride in sorted(set(STRIDES)):
        cells = SIZE // stride
        per_cell = 2 * STRIDES.count(stride)  # aspect ratio 1.0 + one interpolated scale per layer
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def check(data: bytes, np, ort) -> dict:
    """Run the model on astronaut.png; return the best score and its decoded box."""
    import cv2

    from edgekit.runtime.datasets import sample_image

    photo = sample_image("astronaut")  # RGB, 512x512: square, so letterboxing adds no border
    rgb = cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)  # as MediaPipe warps
    x = (rgb.astype(np.float32) - 127.5) / 127.5  # MediaPipe's output_tensor_float_range [-1, 1]
    x = x.transpose(2, 0, 1)[None]  # HWC -> NCHW, the layout tflite2onnx gave the graph
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    regressors, logits = session.run(["regressors", "classificators"], {"input": x})
    clipped = np.clip(logits[0, :, 0].astype(np.float64), -100, 100)  # score_clipping_thresh
    scores = 1 / (1 + np.exp(-clipped))  # sigmoid: logit -> probability of a face
    best = int(scores.argmax())
    # Box = anchor centre + offset / 128 (x_scale = y_scale = w_scale = h_scale = 128).
    cx, cy = anchor_centres(np)[best] + regressors[0, best, :2] / SIZE
    w, h = regressors[0, best, 2:4] / SIZE
    box = [round(float(v), 3) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)]
    return {"score": round(float(scores[best]), 4), "box_xyxy": box}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="where to write the .onnx file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", type=Path, help=f"a downloaded {MEDIAPIPE} wheel")
    source.add_argument("--tflite", type=Path, help="face_detection_short_range.tflite itself")
    args = parser.parse_args()

    tflite2onnx = need("tflite2onnx", "tflite2onnx==0.4.1")
    ort = need("onnxruntime", "onnxruntime")
    onnx = need("onnx", "onnx")
    import numpy as np

    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)  # silence 70x "float16 not tested"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.tflite.read_bytes() if args.tflite else fetch_tflite(args.wheel, tmp)
        digest = hashlib.sha256(model).hexdigest()
        if digest != TFLITE_SHA256:
            sys.exit(f"unexpected .tflite (sha256 {digest}, expected {TFLITE_SHA256})")
        (tmp / "face.tflite").write_bytes(model)
        tflite2onnx.convert(str(tmp / "face.tflite"), str(tmp / "face.onnx"))  # takes paths only
        data = canonical(onnx.load(str(tmp / "face.onnx")))

    result = check(data, np, ort)
    x1, top, x2, _ = result["box_xyxy"]
    if result["score"] <= 0.9 or not (0.2 < (x1 + x2) / 2 < 0.8 and top < 0.5):  # her face
        sys.exit(f"conversion check failed on astronaut.png: {result}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(json.dumps({
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "tflite_sha256": digest,
        "astronaut": result,
        "seconds": round(time.perf_counter() - start, 2),
    }))


if __name__ == "__main__":
    main()
