"""Train the zoo's ``digits-cnn`` (8x8 handwritten digits) and export it to ONNX.

What: a ~21k-parameter CNN trained for 10 epochs on ``edgekit.runtime.datasets.digits(split="train")``
(1,433 images), exported with the classic TorchScript exporter to ``--out``. The test accuracy is
measured with ONNX Runtime on the exported file itself, so the number printed is the number a
student reproduces with ``edgekit models verify digits-cnn``.

Why this way: the model is small enough to commit (~90 KB) and trains in seconds on one CPU
thread, so students can rebuild it and get the same bytes. Determinism comes from a fixed seed,
one thread and ``torch.use_deterministic_algorithms(True)``.

    python models/build/digits_cnn.py --out models/digits-cnn.onnx

Last stdout line: ``{"sha256": ..., "bytes": ..., "accuracy": ..., "seconds": ...}``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

from _contract import need  # import-or-exit-3, shared by the build scripts

ROOT = Path(__file__).resolve().parents[2]  # the repo root, so `import edgekit` works uninstalled
if (ROOT / "edgekit").is_dir():  # a source checkout (an installed edgekit imports anyway)
    sys.path.insert(0, str(ROOT))

EPOCHS, BATCH, LR, SEED = 10, 32, 3e-3, 0


def build_model(nn):
    # 1x8x8 -> 16x8x8 -> 32x8x8 -> 32x4x4 -> 32 -> 10 logits (21,546 parameters)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 32), nn.ReLU(),
        nn.Linear(32, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="where to write the .onnx file")
    args = parser.parse_args()

    torch = need("torch", "torch==2.13.0")
    ort = need("onnxruntime", "onnxruntime")
    import numpy as np
    from torch import nn

    from edgekit.runtime.datasets import digits

    start = time.perf_counter()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # one thread: the same summation order, so the same bytes, every run
    torch.use_deterministic_algorithms(True)

    x_train, y_train = (torch.from_numpy(a) for a in digits(split="train"))
    model = build_model(nn)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(SEED)  # own generator: shuffling cannot drift with init
    for _ in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(x_train), generator=order).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()

    model.eval()
    # torch 2.9+ warns that dynamo=False is the legacy exporter; we choose it on purpose.
    warnings.filterwarnings("ignore", message=".*legacy TorchScript", category=DeprecationWarning)
    buf = io.BytesIO()  # export to memory first: hash and write exactly the same bytes
    torch.onnx.export(
        model, (torch.zeros(1, 1, 8, 8),), buf,
        dynamo=False,  # the classic exporter: no onnxscript needed, one self-contained file
        opset_version=17,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    data = buf.getvalue()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)

    # Measure on the exported file with ONNX Runtime, not on the torch model.
    x_test, y_test = digits(split="test")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x_test})[0]
    accuracy = float(np.mean(logits.argmax(axis=1) == y_test))

    print(json.dumps({
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "accuracy": accuracy,  # unrounded: `edgekit models verify` compares it exactly
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - start, 2),
    }))


if __name__ == "__main__":
    main()
