"""Runs inside the emulator (aarch64 Python 3.11 under qemu-user), started by harness.py.

Four steps, each timed; a step that raises is recorded (error and traceback) and the next one
still runs, so the host test always gets a JSON document and can say exactly what broke:

1. ``import onnxruntime``;
2. ``python -m edgekit doctor --json``, the command a student runs (it starts child interpreters:
   through ``guest-python`` they are emulated too); rerun with a longer deadline only when a check
   missed doctor's 20 s one (see ``_doctor``);
3. ``digits-cnn`` on the first ``N_IMAGES`` test images of ``edgekit.runtime.datasets.digits``: the raw
   logits, compared on the host with ``tests/fixtures/arm/digits-cnn-x86.json``;
4. a tiny ``edgekit.benchmark`` of ``digits-cnn`` (a few seconds).

Prints one line: ``EDGEKIT-ARM-RESULT {json}``. Standard library at import time (pytest's
doctest collection imports this file on the host).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback

MARK = "EDGEKIT-ARM-RESULT "
N_IMAGES = 16
BENCH = dict(warmup_runs=5, warmup_s=0.2, min_runs=30, min_s=1.0, max_s=5.0)
DOCTOR_TIMEOUT_S = 150  # the whole doctor command
DOCTOR_RETRY_TIMEOUT_S = 90  # its checks' deadline in the retry (edgekit.runtime.doctor.TIMEOUT_S is 20)


def _step(result: dict, name: str, fn) -> None:
    start = time.perf_counter()
    try:
        result[name] = fn()
    except BaseException as exc:  # noqa: BLE001 - report everything, including SystemExit
        result[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    result["timings_s"][name] = round(time.perf_counter() - start, 3)


def _import_onnxruntime() -> dict:
    import onnxruntime as ort

    return {"version": ort.__version__, "providers": ort.get_available_providers()}


def _run_doctor(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, errors="replace",
                          timeout=DOCTOR_TIMEOUT_S)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    return {"exit_code": proc.returncode, "report": report,
            "stdout_tail": None if report else proc.stdout[-2000:], "stderr_tail": proc.stderr[-2000:]}


def _doctor() -> dict:
    """``python -m edgekit doctor --json``, as a student runs it. Its checks share a 20 s deadline
    meant for real boards; emulated 150-330x slower on a busy host, a check can miss it. Only then
    the same checks run again through the API with a longer deadline, and both runs are reported."""
    first = _run_doctor(["-m", "edgekit", "doctor", "--json"])
    late = [c["name"] for c in (first["report"] or {}).get("checks", []) if c["detail"].startswith("no answer after")]
    if not late:
        return first
    retry = _run_doctor(["-c", "import json; from edgekit.runtime.doctor import run_checks; "
                         f"print(json.dumps(run_checks(timeout={DOCTOR_RETRY_TIMEOUT_S}).to_dict(), default=str))"])
    return {**retry, "exit_code": 0 if (retry["report"] or {}).get("ok") else 1,
            "first_run_timed_out": late, "retry_timeout_s": DOCTOR_RETRY_TIMEOUT_S}


def _parity() -> dict:
    import edgekit as ek

    x, y = ek.datasets.digits(split="test")
    x, y = x[:N_IMAGES], y[:N_IMAGES]
    model = ek.load("digits-cnn")
    logits = model(x)[0]
    return {"inputs": f"edgekit.runtime.datasets.digits(split='test')[0][:{N_IMAGES}]",
            "input_sha256": hashlib.sha256(x.tobytes()).hexdigest(), "labels": y.tolist(),
            "model_sha256": ek.zoo.file_sha256(model.path), "providers": model.providers,
            "logits": logits.astype(float).tolist()}


def _bench() -> dict:
    import edgekit as ek

    r = ek.benchmark("digits-cnn", **BENCH)
    return {"config": BENCH, "latency_ms": {k: r.latency_ms[k] for k in ("n", "p50", "p90", "mean")},
            "cold_start_ms": r.cold_start_ms, "throughput_ips": r.throughput_ips,
            "machine": r.environment["machine"], "device_cpu_model": r.device.get("cpu_model")}


def main() -> int:
    start = time.perf_counter()
    result: dict = {"machine": platform.machine(), "python": platform.python_version(),
                    "executable": sys.executable, "qemu_cpu": os.environ.get("QEMU_CPU"), "timings_s": {}}
    _step(result, "import_onnxruntime", _import_onnxruntime)
    _step(result, "doctor", _doctor)
    _step(result, "parity", _parity)
    _step(result, "bench", _bench)
    import edgekit

    result["edgekit_file"] = edgekit.__file__  # the freshly built wheel, not a checkout
    result["timings_s"]["total"] = round(time.perf_counter() - start, 3)
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
