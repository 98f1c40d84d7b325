"""Optional extras name the exact pip command when missing; import edgekit stays lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgekit as ek
from edgekit._extras import require


def test_missing_extra_is_one_line_with_pip_command():
    with pytest.raises(ek.MissingExtraError) as info:
        require("definitely_not_installed_module", extra="lab", purpose="plots")
    msg = str(info.value)
    assert "pip install 'edgekit[lab]'" in msg and "plots" in msg and "\n" not in msg
    assert isinstance(info.value, ImportError)


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` that a bare one does not."""
    show = "; import sys; print('\\n'.join(sys.modules))"
    bare = subprocess.run([sys.executable, "-c", show[2:]], capture_output=True, text=True, check=True).stdout
    out = subprocess.run([sys.executable, "-c", code + show], capture_output=True, text=True, check=True).stdout
    return set(out.split()) - set(bare.split())


def test_import_edgekit_imports_no_heavy_module():
    new = _modules_after("import edgekit")
    heavy = {"onnxruntime", "numpy", "cv2", "onnx", "rich", "psutil", "importlib.metadata", "json", "subprocess"}
    assert not new & heavy, f"import edgekit pulled in {sorted(new & heavy)}"
    assert {m for m in new if m.startswith("edgekit")} == {"edgekit", "edgekit._version"}, sorted(new)


def test_load_and_run_import_only_the_load_path(relu_path):
    """ek.load(path) and one run cost what raw onnxruntime costs (benchmarks/overhead.py): no device
    facts, package metadata, hashing, JSON or subprocess machinery on the way."""
    new = _modules_after(f"import numpy as np, edgekit as ek; ek.load({str(relu_path)!r})(np.ones((1, 3), np.float32))")
    mine = {m for m in new if m.startswith("edgekit")}
    assert mine <= {"edgekit", "edgekit._version", "edgekit._errors", "edgekit._io", "edgekit._paths", "edgekit._sysfs",
                    "edgekit.runtime", "edgekit.runtime.model", "edgekit.runtime.providers",
                    "edgekit.runtime.board", "edgekit.runtime.zoo", "edgekit.runtime._validate"}, sorted(mine)
    slow = {"importlib.metadata", "email", "hashlib", "subprocess", "json", "inspect", "cv2", "psutil"}
    assert not new & slow - _modules_after("import numpy as np, onnxruntime"), sorted(new & slow)


# The public names, as a snapshot: growing or shrinking the API is a conscious change to this list.
API = [
    "BenchResult", "ConfigError", "Detection", "DeviceInfo", "EdgekitError", "EvalResult", "ImageNotFoundError",
    "InferenceError", "InputError", "InvalidModelError", "MissingExtraError", "Model", "ModelInfo",
    "ModelLoadError", "ModelNotFoundError", "NpuError", "NpuReport", "OptimizeResult", "Pipeline",
    "PipelineResult", "ProviderChoice", "ProviderError", "QuantResult", "ResultError", "SocError",
    "TensorSpec", "UnsupportedModelError", "VideoSource", "ZooError", "__version__", "benchmark", "check",
    "checker", "compare", "datasets", "deploy", "detect", "device", "device_info", "doctor", "energy",
    "evaluate", "export", "grading", "image", "info", "interleave", "iou", "live", "load", "load_image",
    "make_test_video", "nms", "npu", "npu_check", "optimize", "pareto", "perf", "pipeline", "preprocess",
    "profile", "providers", "qnn", "quantize", "report", "resolve_providers", "run_live", "runtime",
    "sampler", "stats", "suite", "video", "vision", "zoo",
]


def test_public_api_is_the_snapshot():
    assert sorted(ek.__all__) == API, (f"added: {sorted(set(ek.__all__) - set(API))}, "
                                       f"removed: {sorted(set(API) - set(ek.__all__))} — update API on purpose")
    assert dir(ek) == ek.__all__


def test_every_public_name_is_what_its_module_defines():
    import importlib
    import types

    for name, where in ek._LAZY.items():
        module = importlib.import_module(f"edgekit.{where}")
        assert getattr(ek, name) is getattr(module, name), f"ek.{name} is not edgekit.{where}.{name}"
        assert getattr(module, name).__module__ == module.__name__, f"ek.{name} is only re-exported by {where}"
    for name, where in ek._MODULES.items():
        value = getattr(ek, name)
        assert isinstance(value, types.ModuleType) and value.__name__ == f"edgekit.{where}", (name, value)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ek.nope