"""How good is a model, and how close is it to another? ``evaluate`` and ``edgekit eval``.

Accuracy: top-k on a labelled dataset (a sample counts for top-k when its label is among the k
largest scores of the first output). Agreement with a ``reference`` model (the fp32 original of a
quantized model, say), on the first output of both:

* ``max_abs_diff``, ``mean_abs_diff``: over every element;
* ``cosine``: mean over samples of the cosine similarity of the two output vectors (1 = same
  direction; ``cosine_min`` is the worst sample);
* ``top1_agreement``: fraction of samples whose arg-max is the same (labels not needed).

>>> r = evaluate("digits-cnn", "digits", reference="digits-cnn")
>>> round(r.accuracy["top1"], 4), r.agreement["top1_agreement"], r.agreement["max_abs_diff"]
(0.9863, 1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._errors import EvaluationError


DATASETS = ("digits", "digits:test", "digits:train", "digits:all")


def images(paths: Sequence[Path], pre: dict, size: tuple[int, int]) -> np.ndarray:
    """Decode and preprocess image files into a float32 NCHW batch, as a zoo ``preprocess`` says
    (through :func:`edgekit.vision.preprocessing.preprocess`; a spec without ``resize`` is stretched to
    ``size``, and without ``mean``/``std`` gives RGB in [0, 1])."""
    from ..vision.image import load_image
    from ..vision.preprocessing import preprocess

    spec = {"size": list(size), "mean": [0.0] * 3, "std": [255.0] * 3, "resize": "stretch", **pre}
    # BGR as decoded: preprocess reorders after resizing, on fewer pixels (see vision.preprocessing)
    return np.stack([preprocess(load_image(p, "bgr"), spec, color="bgr").input[0] for p in paths])


def load_dataset(spec: Any, model: Any = None, *, split: str = "test") -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(x, y, name)`` from ``(x, y)``, ``(x, None)``, an array ``x``, ``"digits"`` (its ``split``;
    ``"digits:train"`` names one), an ``.npz`` (arrays ``x``, optional ``y``) or ``.npy`` file; or, given
    the ``model`` to size and normalise for, a folder of images, a zoo name or a zoo-style
    ``preprocess`` dict (the bundled photos, preprocessed that way). Images carry no labels.

    >>> x, y, name = load_dataset("digits")
    >>> x.shape, name
    ((364, 1, 8, 8), 'digits:test')
    """
    from ..runtime import zoo

    if isinstance(spec, (tuple, list)) and len(spec) == 2 and not np.isscalar(spec[0]):
        x, y = spec
        return np.asarray(x), (None if y is None else np.asarray(y)), "arrays"
    if isinstance(spec, np.ndarray):
        return spec, None, f"array {spec.shape}"
    text, path = str(spec), Path(str(spec))
    if text in DATASETS:
        from ..runtime.datasets import digits

        split = text.partition(":")[2] or split
        return (*digits(split=split), f"digits:{split}")
    if path.suffix in (".npz", ".npy") and path.is_file():
        data = np.load(path)
        if path.suffix == ".npy":
            return data, None, path.name
        if "x" not in data:
            raise EvaluationError(f"{path} holds arrays {list(data)}; expected 'x' (inputs) and optionally "
                                  f"'y' (labels): np.savez('{path.name}', x=x, y=y)")
        return data["x"], (data["y"] if "y" in data else None), path.name
    if model is not None and (isinstance(spec, dict) or path.is_dir() or zoo.is_zoo_name(text)):
        size = tuple(d if isinstance(d, int) else 224 for d in model.inputs[0].shape[-2:])
        if isinstance(spec, dict) or zoo.is_zoo_name(text):
            from ..runtime.datasets import sample_images

            photos = list(sample_images().values())
            pre = spec if isinstance(spec, dict) else zoo.entry(text).preprocess
            return images(photos, pre, size), None, f"{len(photos)} bundled photos"
        from ..vision.image import IMAGE_SUFFIXES, image_files

        files = image_files(path)
        if not files:
            raise EvaluationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        pre = zoo.entry(model.name).preprocess if zoo.is_zoo_name(model.name) else {}
        return images(files, pre, size), None, f"{len(files)} images from {path}"
    raise EvaluationError(f"unknown dataset {spec!r}: expected (x, y) arrays, (x, None), an array, one of "
                          f"{', '.join(DATASETS)}, an .npz file with arrays x and y, or (for a model) a folder "
                          "of images, a zoo name or a preprocess dict")


@dataclass
class EvalResult:
    """Accuracy of ``model`` (and of ``reference``) on ``dataset``, and their agreement."""

    model: str
    dataset: str
    n: int
    output: str
    accuracy: dict[str, float] = field(default_factory=dict)  # {"top1": ..., "top5": ...}; empty without labels
    reference: str | None = None
    reference_accuracy: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"schema": "edgekit.eval/1", **asdict(self)}

    def __str__(self) -> str:
        rows = [f"{self.model} on {self.dataset} ({self.n} samples, output '{self.output}')"]
        for k, v in self.accuracy.items():
            ref = self.reference_accuracy.get(k)
            extra = f"   reference {ref:.2%} (delta {100 * (v - ref):+.2f} points)" if ref is not None else ""
            rows.append(f"  {k:<15} {v:.2%}{extra}")
        if self.agreement:
            rows.append(f"  agreement with {self.reference}:")
            rows += [f"  {k:<15} {v:.6g}" for k, v in self.agreement.items()]
        return "\n".join(rows)


def predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The first output of ``model`` on all of ``x``, run in batches (a fixed batch axis is respected)."""
    fixed = model.inputs[0].shape[0] if model.inputs[0].shape else None
    if isinstance(fixed, int):  # the model was exported with a fixed batch size (often 1)
        if len(x) % fixed:
            raise EvaluationError(f"{model.name} takes batches of exactly {fixed}, and {len(x)} samples do not "
                                  f"divide into them: pass {len(x) - len(x) % fixed} samples")
        batch_size = fixed
    parts = [model.run(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.empty((0,))


def topk_accuracy(scores: np.ndarray, y: np.ndarray, top: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``; a k larger than the number of classes is left out.

    >>> topk_accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]), top=(1, 2))
    {'top1': 0.5, 'top2': 1.0}
    """
    if scores.ndim != 2 or len(scores) != len(y):
        raise EvaluationError(f"accuracy needs classifier scores of shape (N, classes) and N labels; got scores "
                              f"{scores.shape} and {len(y)} labels — is the first output the class scores?")
    # a stable sort breaks ties by class index, as argmax does: quantized scores do tie
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = (order == np.asarray(y)[:, None]).argmax(axis=1)  # where the true class sits
    return {f"top{k}": float((rank < k).mean()) for k in top if k <= scores.shape[1]}


def agreement(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Max/mean absolute difference, mean and min per-sample cosine, and top-1 agreement.

    >>> agreement(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]]))["cosine"]
    1.0
    """
    if out.shape != ref.shape:
        raise EvaluationError(f"outputs differ in shape: {out.shape} vs reference {ref.shape} — compare two "
                              "versions of the same model")
    a, b = out.reshape(len(out), -1).astype(np.float64), ref.reshape(len(ref), -1).astype(np.float64)
    diff = np.abs(a - b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    # two all-zero outputs agree perfectly; one zero against a non-zero output not at all
    cos = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1), np.all(a == b, axis=1) * 1.0)
    return {"max_abs_diff": float(diff.max(initial=0.0)), "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "cosine": float(cos.mean()), "cosine_min": float(cos.min(initial=1.0)),
            "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean())}


def _as_model(model: Any):
    from ..runtime.model import Model, load

    return model if isinstance(model, Model) else load(model, providers="cpu")


def evaluate(model: Any, dataset: Any, *, reference: Any = None, top: Sequence[int] = (1, 5),
             batch_size: int = 256) -> EvalResult:
    """Top-k accuracy of ``model`` (zoo name, path or :class:`~edgekit.Model`) on ``dataset`` (see
    :func:`load_dataset`), and its agreement with ``reference`` when given. Without labels
    (``(x, None)``) only the agreement is measured."""
    m = _as_model(model)
    x, y, name = load_dataset(dataset, m)
    out = predict(m, x, batch_size)
    result = EvalResult(m.name, name, len(x), m.outputs[0].name)
    if y is not None:
        result.accuracy = topk_accuracy(out, y, top)
    if reference is not None:
        ref_model = _as_model(reference)
        ref = predict(ref_model, x, batch_size)
        result.reference = ref_model.name
        if y is not None:
            result.reference_accuracy = topk_accuracy(ref, y, top)
        result.agreement = agreement(out, ref)
    return result
