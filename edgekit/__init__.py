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
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it (relative to this package). The layers (see ARCHITECTURE.md):
# runtime/ -> perf/, vision/ -> deploy/ -> cli/; grading/ beside runtime; _errors, _extras... below all.
_LAZY = {
    "load": "runtime.model", "Model": "runtime.model", "TensorSpec": "runtime.model",
    "ModelInfo": "runtime.info",
    "ProviderChoice": "runtime.providers", "resolve_providers": "runtime.providers",
    "device_info": "runtime.device", "DeviceInfo": "runtime.device",
    "EdgekitError": "_errors", "ModelLoadError": "_errors", "ModelNotFoundError": "_errors",
    "InvalidModelError": "_errors", "UnsupportedModelError": "_errors", "ProviderError": "_errors",
    "InputError": "_errors", "InferenceError": "_errors", "ZooError": "_errors",
    "MissingExtraError": "_errors", "ResultError": "_errors", "ConfigError": "_errors",
    "ImageNotFoundError": "_errors", "NpuError": "_errors", "SocError": "_errors",
    "benchmark": "perf.bench", "BenchResult": "perf.bench",
    "compare": "perf.comparison", "profile": "perf.profiler",
    "load_image": "vision.image", "preprocess": "vision.preprocessing",
    "Detection": "vision.detect", "nms": "vision.detect", "iou": "vision.detect",
    "VideoSource": "vision.video", "make_test_video": "vision.video",
    "Pipeline": "vision.pipeline", "PipelineResult": "vision.stages", "run_live": "vision.live",
    "npu_check": "deploy.npu", "NpuReport": "deploy.npu",
    "evaluate": "deploy.evaluation", "EvalResult": "deploy.evaluation",
    "quantize": "deploy.quantization", "QuantResult": "deploy.quantization", "pareto": "deploy.quantization",
    "optimize": "deploy.optimization", "OptimizeResult": "deploy.optimization",
    "check": "grading.selfcheck", "checker": "grading.selfcheck",
}
# short names for modules (``ek.zoo.path``, ``ek.datasets.digits``) and the subpackages themselves
_MODULES = {
    "zoo": "runtime.zoo", "datasets": "runtime.datasets", "device": "runtime.device", "doctor": "runtime.doctor",
    "providers": "runtime.providers", "info": "runtime.info", "qnn": "runtime.qnn",
    "stats": "perf.stats", "sampler": "perf.sampler", "energy": "perf.energy", "export": "perf.export",
    "report": "perf.report", "suite": "perf.suite", "interleave": "perf.interleave",
    "image": "vision.image", "detect": "vision.detect", "video": "vision.video", "pipeline": "vision.pipeline",
    "live": "vision.live", "npu": "deploy.npu",
    "runtime": "runtime", "perf": "perf", "vision": "vision", "deploy": "deploy", "grading": "grading",
}

__all__ = sorted([*_LAZY, *_MODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{_MODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from . import deploy, grading, perf, runtime, vision
    from ._errors import *  # noqa: F401,F403
    from .deploy import npu
    from .deploy.evaluation import EvalResult, evaluate
    from .deploy.npu import NpuReport, npu_check
    from .deploy.optimization import OptimizeResult, optimize
    from .deploy.quantization import QuantResult, pareto, quantize
    from .grading.selfcheck import check, checker
    from .perf import energy, export, interleave, report, sampler, stats, suite
    from .perf.bench import BenchResult, benchmark
    from .perf.comparison import compare
    from .perf.profiler import profile
    from .runtime import datasets, device, doctor, info, providers, qnn, zoo
    from .runtime.device import DeviceInfo, device_info
    from .runtime.info import ModelInfo
    from .runtime.model import Model, TensorSpec, load
    from .runtime.providers import ProviderChoice, resolve_providers
    from .vision import detect, image, live, pipeline, video
    from .vision.detect import Detection, iou, nms
    from .vision.image import load_image
    from .vision.live import run_live
    from .vision.pipeline import Pipeline
    from .vision.stages import PipelineResult
    from .vision.preprocessing import preprocess
    from .vision.video import VideoSource, make_test_video
