"""edgekit on an emulated Raspberry Pi 4 (Cortex-A72) and Pi 5 (Cortex-A76): aarch64 wheels,
Debian 12's python3.11, qemu-user, on this x86_64 machine.

For each CPU model, ``tests/arm/guest_check.py`` runs under ``qemu-aarch64-static`` with a
freshly built edgekit wheel and the cached aarch64 dependencies, and this module asserts on its
JSON: ``edgekit doctor`` is healthy and sees the right core, ``digits-cnn`` gives the stored x86
outputs (``tests/fixtures/arm/digits-cnn-x86.json``) on fixed inputs, a tiny benchmark completes.

Needs ``bash tests/arm/setup.sh`` first (root: apt, debootstrap; CI runs it). Without it the
emulated tests skip, unless ``EDGEKIT_REQUIRE_ARM=1`` (set by CI), which turns the skip into a
failure. Timings: ``pytest tests/test_arm.py -rA`` prints them. Details and traps:
tests/arm/README.md. Regenerate the x86 reference: ``python tests/test_arm.py --regen``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import skip_or_fail

pytestmark = pytest.mark.slow

ARM = Path(__file__).resolve().parent / "arm"
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "arm" / "digits-cnn-x86.json"
ATOL = 1e-4  # measured differences between x86 and emulated aarch64: ~1e-6


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"edgekit_arm_{name}", ARM / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load("harness")
guest = _load("guest_check")


def _require_arm():
    skip_or_fail("the emulated aarch64 check", harness.missing(), "bash tests/arm/setup.sh (as root)",
                 "EDGEKIT_REQUIRE_ARM")


def _reference() -> dict:
    assert REFERENCE.is_file(), f"missing {REFERENCE}; create it: python tests/test_arm.py --regen"
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``run(cpu)``: the guest check's JSON for that CPU model, run once per module (sequentially:
    edgekit doctor already keeps every core busy with its child interpreters)."""
    _require_arm()
    work = tmp_path_factory.mktemp("arm")
    try:
        site = harness.install_edgekit(work / "edgekit")  # the code under test: built fresh
    except harness.HarnessError as exc:
        pytest.fail(f"could not build and install edgekit's wheel: {exc}", pytrace=False)
    results: dict[str, dict] = {}

    def get(cpu: str) -> dict:
        if cpu not in results:
            try:
                results[cpu] = harness.run_guest(cpu, site, work)
            except harness.HarnessError as exc:
                results[cpu] = {"harness_error": str(exc)}
            _print_summary(cpu, results[cpu])
        if "harness_error" in results[cpu]:
            pytest.fail(results[cpu]["harness_error"], pytrace=False)
        return results[cpu]

    return get


def _print_summary(cpu: str, r: dict) -> None:
    bench, doctor = r.get("bench") or {}, r.get("doctor") or {}
    print(f"\n[{cpu}] " + json.dumps({"host_wall_s": r.get("host_wall_s"), "timings_s": r.get("timings_s"),
                                      "bench_p50_ms": (bench.get("latency_ms") or {}).get("p50"),
                                      "doctor_first_run_timed_out": doctor.get("first_run_timed_out"),
                                      "error": r.get("harness_error")}))


def _ok_step(r: dict, step: str) -> dict:
    value = r.get(step)
    assert isinstance(value, dict) and "error" not in value, (
        f"guest step {step!r} failed on {r.get('qemu_cpu')}: expected a result, got "
        f"{json.dumps(value, indent=1)[:3000]}\nguest stderr ends:\n{r.get('guest_stderr_tail', '')}")
    return value


CPU_MODELS = sorted(harness.CPUS)


@pytest.mark.parametrize("cpu", CPU_MODELS)
def test_guest_is_aarch64_and_imports_onnxruntime(run, cpu):
    r = run(cpu)
    assert (r["machine"], r["qemu_cpu"], r["python"][:4]) == ("aarch64", cpu, "3.11"), (
        f"expected an aarch64 Python 3.11 emulated as {cpu}, got machine={r['machine']!r}, "
        f"QEMU_CPU={r['qemu_cpu']!r}, python={r['python']!r}")
    assert r["guest_exit_code"] == 0, (
        f"expected guest_check.py to exit with 0, got {r['guest_exit_code']}: {r['guest_stderr_tail']}")
    ort = _ok_step(r, "import_onnxruntime")
    assert "CPUExecutionProvider" in ort["providers"], f"expected the CPU provider, got {ort['providers']}"
    assert "/site/edgekit/" in r["edgekit_file"], (
        f"expected edgekit from the freshly built wheel (.../site/edgekit/), got {r['edgekit_file']}")


@pytest.mark.parametrize("cpu", CPU_MODELS)
def test_doctor_is_healthy_and_sees_the_core(run, cpu):
    doctor = _ok_step(run(cpu), "doctor")
    report = doctor["report"]
    assert report is not None, (
        f"expected JSON from `edgekit doctor --json`, got: {doctor['stdout_tail']}\n{doctor['stderr_tail']}")
    checks = {c["name"]: c for c in report["checks"]}
    bad = [f"{c['level']} {c['name']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    assert report["ok"] and doctor["exit_code"] == 0 and not bad, (
        f"expected a healthy doctor (exit code 0) on {cpu}, got exit code {doctor['exit_code']} and "
        f"failed checks: {bad}" + (f" (in a retry with a {doctor['retry_timeout_s']} s deadline: the "
                                   f"first run timed out in {doctor['first_run_timed_out']})"
                                   if doctor.get("first_run_timed_out") else ""))
    for name in ("import onnxruntime", "inference", "device"):
        assert checks.get(name, {}).get("level") == "ok", f"expected doctor check {name!r} ok, got {checks.get(name)}"
    _, core, _ = harness.CPUS[cpu]
    device = report["device"]
    assert (device["machine"], device["cpu_model"]) == ("aarch64", core), (
        f"expected the doctor's device to be an aarch64 {core}, got {device['machine']} {device['cpu_model']}")
    dotprod = cpu == "cortex-a76"  # the A76 has dot product and fp16; the A72 has neither
    expected = {"neon": True, "dotprod": dotprod, "fp16": dotprod}
    got = {feature: feature in device["isa"] for feature in expected}
    assert got == expected, f"expected ISA features {expected} for {core}, got {device['isa']}"


@pytest.mark.parametrize("cpu", CPU_MODELS)
def test_digits_cnn_matches_x86(run, cpu):
    ref, par = _reference(), _ok_step(run(cpu), "parity")
    for key in ("input_sha256", "model_sha256", "labels"):
        assert par[key] == ref[key], f"expected the reference's {key} {ref[key]}, got {par[key]} (inputs differ?)"
    got, want = np.asarray(par["logits"]), np.asarray(ref["logits"])
    assert got.shape == want.shape, f"expected logits of shape {want.shape}, got {got.shape}"
    err = float(np.abs(got - want).max())
    assert err <= ATOL, f"expected {cpu} logits within {ATOL} of x86, got max |difference| {err:.3g}"
    assert (got.argmax(1) == want.argmax(1)).all(), (
        f"expected the x86 classes {want.argmax(1).tolist()}, got {got.argmax(1).tolist()}")


@pytest.mark.parametrize("cpu", CPU_MODELS)
def test_tiny_benchmark_completes(run, cpu):
    bench = _ok_step(run(cpu), "bench")
    lat, cfg = bench["latency_ms"], bench["config"]
    assert lat["n"] >= cfg["min_runs"], f"expected at least {cfg['min_runs']} timed runs, got {lat['n']}"
    assert math.isfinite(lat["p50"]) and 0 < lat["p50"] < 1000, (
        f"expected a p50 latency between 0 and 1000 ms under emulation, got {lat['p50']}")
    core = harness.CPUS[cpu][1]
    assert (bench["machine"], bench["device_cpu_model"]) == ("aarch64", core), (
        f"expected the benchmark's device to be an aarch64 {core}, got {bench['machine']} {bench['device_cpu_model']}")


def test_reference_matches_this_machine():
    """The stored reference is still this checkout's model on these inputs (no emulator needed):
    when digits-cnn or the dataset changes, this says to regenerate it."""
    ref, here = _reference(), guest._parity()
    assert (here["model_sha256"], here["input_sha256"]) == (ref["model_sha256"], ref["input_sha256"]), (
        f"{REFERENCE.name} was made for another model or inputs: expected model {ref['model_sha256'][:12]} "
        f"inputs {ref['input_sha256'][:12]}, got {here['model_sha256'][:12]} {here['input_sha256'][:12]}; "
        "regenerate: python tests/test_arm.py --regen")
    err = float(np.abs(np.asarray(here["logits"]) - np.asarray(ref["logits"])).max())
    assert err <= ATOL, f"expected this machine within {ATOL} of {REFERENCE.name}, got {err:.3g}"


def regenerate() -> None:
    """Write the reference from this (x86_64) machine, with the same code the guest runs."""
    import platform

    import onnxruntime

    data = guest._parity()
    data.update(machine=platform.machine(), onnxruntime=onnxruntime.__version__,
                made_by="python tests/test_arm.py --regen")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1)  # then one line per list of numbers (labels, a row of logits)
    text = re.sub(r"\[\s+([-\d.e,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    REFERENCE.write_text(text + "\n")
    print(f"wrote {REFERENCE} ({data['machine']}, onnxruntime {data['onnxruntime']})")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit("usage: python tests/test_arm.py --regen   (rewrites " + str(REFERENCE) + ")")
    regenerate()
