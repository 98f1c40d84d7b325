"""One contract for every ``*Result``/``*Report`` class in edgekit, as scikit-learn's check_estimator
does for estimators: ``to_dict()`` survives a JSON round trip unchanged, names its schema
(``"schema"`` or ``"schema_version"``), and ``str()`` says something.

The classes are found by walking edgekit's modules, so a new result class is covered the day it
lands: give it a factory below (a small real run, or its constructor).
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import pytest

import edgekit


def _result_classes() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(edgekit.__path__, "edgekit."):
        if info.name.endswith("__main__") or ".demo" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and name.endswith(("Result", "Report")):
                found.append(f"{module.__name__}.{name}")
    return sorted(found)


def _bench(relu_path):
    return edgekit.benchmark(relu_path, min_runs=5, min_s=0.0, warmup_runs=1, warmup_s=0.0)


def _eval(relu_path):
    from edgekit.deploy.evaluation import EvalResult

    return EvalResult("digits-cnn", "digits:test", 364, "logits", {"top1": 0.98}, "digits-cnn-int8",
                      {"top1": 0.97}, {"top1": 0.99})


def _verify(relu_path):
    from edgekit.runtime.zoo import verify

    return verify("digits-cnn")


def _build(relu_path):
    from edgekit.runtime.zoo import BuildResult

    return BuildResult("digits-cnn", "models/digits-cnn.onnx", "ab" * 32, True, {"accuracy": 0.98})


def _doctor(relu_path):
    from edgekit.runtime.doctor import run_checks

    return run_checks()


FACTORIES = {
    "edgekit.perf.bench.BenchResult": _bench,
    "edgekit.deploy.evaluation.EvalResult": _eval,
    "edgekit.runtime.zoo.VerifyResult": _verify,
    "edgekit.runtime.zoo.BuildResult": _build,
    "edgekit.runtime.doctor.DoctorReport": _doctor,
}
# Classes that do not meet the contract yet, each in a part of edgekit another change owns.
# strict: the day one is fixed, this test fails until its line goes.
GAPS = {
    "edgekit.grading.batch.BatchResult": "no to_dict (grading/ is being rebuilt by the grading issues)",
    "edgekit.grading.kernel.CellResult": "no to_dict (grading/ is being rebuilt by the grading issues)",
    "edgekit.grading.selfcheck.CheckResult": "no to_dict (grading/ is being rebuilt by the grading issues)",
    "edgekit.perf.interleave.ABResult": "no to_dict (perf/interleave: the dedup change owns it)",
    "edgekit.deploy.optimization.LevelReport": "no to_dict of its own (a row of OptimizeResult)",
    "edgekit.vision.live.LiveResult": "to_dict has no schema key (vision/: the dedup change owns it)",
}
# Meet the contract as far as reading the code goes, but no factory is written yet.
NO_FACTORY_YET = {
    "edgekit.deploy.npu.NpuReport", "edgekit.deploy.optimization.OptimizeResult",
    "edgekit.deploy.quantization.QuantResult", "edgekit.perf.profiler.ProfileResult",
    "edgekit.vision.preprocessing.ClassificationResult", "edgekit.vision.preprocessing.DetectionResult",
    "edgekit.vision.stages.PipelineResult",
}
CLASSES = _result_classes()


def test_every_class_is_accounted_for():
    listed = set(FACTORIES) | set(GAPS) | NO_FACTORY_YET
    assert set(CLASSES) == listed, (f"new: {sorted(set(CLASSES) - listed)} (give each a factory), "
                                    f"gone: {sorted(listed - set(CLASSES))}")


@pytest.mark.parametrize("qualname", CLASSES)
def test_result_contract(qualname, relu_path, request):
    if qualname in GAPS:
        request.applymarker(pytest.mark.xfail(reason=GAPS[qualname], strict=True))
    elif qualname in NO_FACTORY_YET:
        pytest.skip("no factory yet")
    module, _, name = qualname.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert hasattr(cls, "to_dict"), f"{qualname} has no to_dict()"
    result = FACTORIES[qualname](relu_path)
    assert type(result) is cls
    d = result.to_dict()
    assert json.loads(json.dumps(d)) == d, f"{qualname}.to_dict() does not survive JSON unchanged"
    assert "schema" in d or "schema_version" in d, f"{qualname}.to_dict() names no schema: {sorted(d)}"
    text = str(result)
    assert text and not text.startswith(f"{name}("), f"str({qualname}) is the dataclass repr: {text[:80]}"
