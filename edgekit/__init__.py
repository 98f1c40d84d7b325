"""edgekit — an offline-first Edge-AI lab kit built on ONNX Runtime.

>>> import edgekit as ek
>>> m = ek.load("digits-cnn")              # a zoo name or a path to an .onnx file
>>> x, y = ek.datasets.digits(split="test")
>>> float((m(x)[0].argmax(1) == y).mean()) >= 0.97
True

Everything here is imported lazily: ``import edgekit`` does not import onnxruntime, numpy or
OpenCV until a name that needs them is used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_LAZY = {
    "load": "model", "Model": "model", "TensorSpec": "model",
    "ModelInfo": "info",
    "benchmark": "bench", "BenchResult": "bench",
    "ProviderChoice": "providers", "resolve_providers": "providers",
    "device_info": "device", "DeviceInfo": "device",
    "EdgekitError": "_errors", "ModelLoadError": "_errors", "ModelNotFoundError": "_errors",
    "InvalidModelError": "_errors", "UnsupportedModelError": "_errors", "ProviderError": "_errors",
    "InputError": "_errors", "InferenceError": "_errors", "ZooError": "_errors",
    "MissingExtraError": "_errors", "ResultError": "_errors",
    "ImageNotFoundError": "_errors", "NpuError": "_errors", "SocError": "_errors",
    "compare": "compare", "profile": "profile",
    "check": "grading.check", "checker": "grading.check",
    "load_image": "image", "preprocess": "vision",
    "Detection": "detect", "nms": "detect", "iou": "detect",
    "npu_check": "npu", "NpuReport": "npu",
    "evaluate": "evaluate", "EvalResult": "evaluate",
    "quantize": "quantize", "QuantResult": "quantize", "pareto": "quantize",
    "optimize": "optimize", "OptimizeResult": "optimize",
    "VideoSource": "video", "make_test_video": "video", "Pipeline": "pipeline", "PipelineResult": "pipeline",
    "run_live": "live",
}
_SUBMODULES = ("datasets", "zoo", "device", "doctor", "providers", "info", "stats", "sampler", "energy",
               "export", "report", "suite", "ab", "grading", "image", "vision", "detect", "npu", "qnn",
               "video", "pipeline", "live")

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """``ek.profile``, ``ek.quantize``... are functions living in modules of the same name. Python
    binds a submodule onto its package when it is first imported, which would replace the function
    with the module; this keeps the function. The module stays importable:
    ``from edgekit.profile import parse_trace``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from . import (ab, datasets, detect, device, doctor, energy, export, grading, image, info, live, npu, pipeline,
                   providers, qnn, report, sampler, stats, suite, video, vision, zoo)
    from .grading.check import check, checker
    from .compare import compare
    from .profile import profile
    from ._errors import *  # noqa: F401,F403
    from .bench import BenchResult, benchmark
    from .detect import Detection, iou, nms
    from .device import DeviceInfo, device_info
    from .image import load_image
    from .info import ModelInfo
    from .model import Model, TensorSpec, load
    from .npu import NpuReport, npu_check
    from .evaluate import EvalResult, evaluate
    from .live import run_live
    from .optimize import OptimizeResult, optimize
    from .pipeline import Pipeline, PipelineResult
    from .quantize import QuantResult, pareto, quantize
    from .video import VideoSource, make_test_video
    from .providers import ProviderChoice, resolve_providers
    from .vision import preprocess
