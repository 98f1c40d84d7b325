"""edgekit.runtime.doctor: the real checks on this machine, and simulated broken installations."""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from edgekit.runtime import doctor
from edgekit.runtime.device import device_info
from edgekit.runtime.doctor import Check, check_import, run_checks

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
SIGILL_CODE = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"


@pytest.fixture(scope="module")
def timed_report():
    start = time.perf_counter()
    report = run_checks()
    return report, time.perf_counter() - start


def test_this_installation_is_healthy(timed_report):
    report, seconds = timed_report
    problems = [c for c in report.checks if not c.ok]
    assert report.ok, f"failed checks: {problems}"
    names = [c.name for c in report.checks]
    for name in ("python", "device", "import onnxruntime", "import cv2", "inference", "execution providers"):
        assert name in names, f"no {name!r} check in {names}"
    assert "CPUExecutionProvider" in report.providers, report.providers
    assert report.device and report.device["fingerprint"], report.device
    # a hang guard, not a speed claim (about a second on an idle 2-core machine; speed belongs in benchmarks/)
    assert seconds < 60, f"run_checks took {seconds:.2f} s"


def test_report_is_plain_json_and_renders(timed_report):
    report = timed_report[0]
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d, "to_dict() does not survive a JSON round trip"
    assert d["schema"] == "edgekit.doctor/1" and d["ok"] is True, d
    assert {"name", "level", "detail", "fix", "ok"} <= set(d["checks"][0]), d["checks"][0]
    out = io.StringIO()
    report.render(Console(file=out, width=120))
    text = out.getvalue()
    assert "edgekit doctor" in text and "import onnxruntime" in text and "All good" in text, text


@posix_only
def test_a_crashing_import_is_a_failed_check_not_a_dead_doctor():
    check = check_import("crashy", code=SIGILL_CODE)
    assert check.level == "fail" and not check.ok, check
    assert "SIGILL" in check.detail, check.detail
    assert check.fix and "instruction" in check.fix and "older wheel" in check.fix, check.fix


@posix_only
def test_crash_of_an_installed_wheel_names_its_version_and_an_older_one():
    check = check_import("numpy", code=SIGILL_CODE)
    assert check.detail.startswith("numpy ") and "SIGILL" in check.detail, check.detail
    assert 'pip install "numpy<' in check.fix, check.fix
    segv = check_import("onnx", code="import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert "SIGSEGV" in segv.detail and "--force-reinstall onnx" in segv.fix, segv


def test_windows_crash_codes_read_as_signals():
    child = doctor._Child.__new__(doctor._Child)  # judge an exit code without starting a process
    child.name, child.module, child.dist = "import onnxruntime", "onnxruntime", "onnxruntime"
    check = child._failure(0xC000001D, "")  # STATUS_ILLEGAL_INSTRUCTION
    assert check is not None and "SIGILL" in check.detail, check


def test_an_import_error_gets_the_classic_fix():
    check = check_import("numpy", code="raise ImportError('DLL load failed while importing _core')")
    assert check.level == "fail" and "DLL load failed" in check.detail, check
    assert "Visual C++ Redistributable" in check.fix, check.fix


def test_a_hanging_import_times_out():
    start = time.perf_counter()
    check = check_import("slowpoke", code="import time; time.sleep(30)", timeout=0.5)
    assert time.perf_counter() - start < 5, "the timeout did not stop the child"
    assert check.level == "fail" and "no answer" in check.detail, check


def test_missing_optional_module_warns_with_the_pip_line():
    check = check_import("edgekit_no_such_module", extra="lab")
    assert check.level == "warn" and check.ok, check
    assert check.fix == 'pip install "edgekit[lab]"' and check.fix in check.detail, check


def test_missing_core_module_fails_and_optional_crash_only_warns():
    missing = check_import("edgekit_no_such_module")
    assert missing.level == "fail" and missing.fix == "pip install edgekit_no_such_module", missing
    broken_extra = check_import("fancy", extra="lab", code="raise ImportError('broken')")
    assert broken_extra.level == "warn", broken_extra


def test_board_specific_provider_hints_and_the_auto_choice_explained(monkeypatch):
    def checks(fixture, providers=("CPUExecutionProvider",), system="Linux", qnn=False):
        monkeypatch.setattr(doctor.platform, "system", lambda: system)
        info = device_info(Path(__file__).parent / "fixtures" / "devices" / fixture).to_dict()
        listed, auto = doctor._providers_checks(list(providers), info, qnn=qnn)
        assert auto.name == "auto picks" and auto.level == "ok", auto
        return listed, auto

    listed, auto = checks("snapdragon", system="Windows")
    assert listed.level == "warn" and "edgekit[qnn]" in listed.fix, listed
    listed, auto = checks("snapdragon", system="Windows", qnn=True)
    assert listed.level == "ok" and auto.detail.startswith("QNNExecutionProvider: a Snapdragon"), auto
    listed, auto = checks("snapdragon")  # Linux on a Snapdragon: no wheel to install
    assert listed.level == "warn" and "Windows" in listed.fix and "out of reach" in auto.detail, (listed, auto)
    listed, auto = checks("jetson-orin-nano")
    assert listed.level == "warn" and "JetPack" in listed.fix, listed
    listed, auto = checks("jetson-orin-nano", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert listed.level == "ok" and auto.detail.startswith("CUDAExecutionProvider: a Jetson"), auto
    listed, auto = checks("rpi5")
    assert listed.level == "ok" and auto.detail.startswith("CPUExecutionProvider: a Raspberry Pi (rpi5)"), auto
    assert doctor._providers_checks([], {})[0].level == "fail"


def test_zoo_failures_are_named():
    rows = [{"name": "digits-cnn", "ok": True, "detail": "sha256 ok"},
            {"name": "mobilenet", "ok": False, "detail": "sha256 mismatch"}]
    check = doctor._zoo_check(rows)
    assert check.level == "fail" and "1/2" in check.detail and "mobilenet" in check.detail, check


def test_check_levels():
    assert Check("a", "warn", "").ok and not Check("a", "fail", "").ok
    assert Check("a", "ok", "d").to_dict() == {"name": "a", "level": "ok", "detail": "d", "fix": None, "ok": True}


def test_no_opencv_wheel_on_windows_arm64_is_a_warning_that_says_why(monkeypatch):
    missing = doctor._missing
    monkeypatch.setattr(doctor, "_missing", lambda module: module == "cv2" or missing(module))
    monkeypatch.setattr(doctor.platform, "system", lambda: "Windows")
    monkeypatch.setattr(doctor.platform, "machine", lambda: "ARM64")
    check = next(c for c in run_checks().checks if c.name == "import cv2")
    assert check.level == "warn" and "no wheel for Windows on ARM64" in check.detail and "WSL" in check.fix, check
    monkeypatch.setattr(doctor.platform, "system", lambda: "Linux")  # elsewhere a missing OpenCV is a failure
    assert next(c for c in run_checks().checks if c.name == "import cv2").level == "fail"


def test_lab_packages_are_the_lab_extra_of_pyproject():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 (tests/test_py310.py)
        import tomli as tomllib
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    extra = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in pyproject["project"]["optional-dependencies"]["lab"]}
    assert extra == {dist for _, dist in doctor.LAB}, f"pyproject's lab extra {sorted(extra)} vs doctor.LAB {doctor.LAB}"


def test_a_missing_lab_package_is_named_with_what_needs_it(monkeypatch):
    missing = doctor._missing
    monkeypatch.setattr(doctor, "_missing", lambda module: module == "sympy" or missing(module))
    warn = doctor.lab_check()
    assert warn.level == "warn" and "sympy" in warn.detail and "labs 6 and 11" in warn.detail, warn
    assert '".[lab]"' in warn.fix and "--no-index" in warn.fix, warn.fix
    report = run_checks(labs=True)  # lab 0's doctor cell: not "All good" without sympy
    row = next(c for c in report.checks if c.name == "lab packages")
    assert row.level == "fail" and not report.ok, row
    monkeypatch.setattr(doctor, "_missing", missing)
    assert doctor.lab_check(required=True).level == "ok", doctor.lab_check(required=True)
