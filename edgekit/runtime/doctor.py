"""``edgekit doctor``: is this installation healthy, and what exactly should be fixed?

Native wheels fail in ways Python cannot catch: a wheel built for a newer CPU dies with
SIGILL ("Illegal instruction") and takes the interpreter with it. So every risky import, the
device probe and a tiny inference each run in their own child interpreter, all started at
once so they overlap; a crash becomes a failed check with a fix, and the doctor lives on.

>>> check_import("json").level
'ok'
>>> print(check_import("no_such_module_xyz", extra="lab").fix)
pip install "edgekit[lab]"

Fix lines use double quotes: they work in bash, zsh, PowerShell and cmd.exe alike.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from .._paths import PACKAGE
from .device import _version

SCHEMA = "edgekit.doctor/1"
TIMEOUT_S = 20.0
_MARK = "EDGEKIT-DOCTOR "  # children print one marked JSON line; anything else is noise

# (module, pip distribution, edgekit extra that brings it or None, needed for the labs?)
IMPORTS = (
    ("onnxruntime", "onnxruntime", None, True), ("onnx", "onnx", None, True),
    ("numpy", "numpy", None, True), ("cv2", "opencv-python", None, True),
    # dependencies of edgekit, but it limps on without them: a warning, not a failure
    ("psutil", "psutil", None, False), ("rich", "rich", None, False),
    ("matplotlib", "matplotlib", "lab", False),
    ("onnxruntime_qnn", "onnxruntime-qnn", "qnn", False),
)
# What the `lab` extra brings, as (module, pip distribution): every lab needs all of them (the extra in
# pyproject.toml is the list; tests/test_doctor.py keeps the two in step). Found, not imported: fast.
LAB = (("jupyterlab", "jupyterlab"), ("ipykernel", "ipykernel"), ("IPython", "ipython"),
       ("matplotlib", "matplotlib"), ("nbformat", "nbformat"), ("nbclient", "nbclient"), ("sympy", "sympy"))
LAB_WHY = {"sympy": "onnxruntime's symbolic shape inference, labs 6 and 11",
           "matplotlib": "the plots of every lab", "nbclient": "edgekit check", "nbformat": "edgekit check"}
# (module, OS, machine) where PyPI has no wheel, so pyproject's markers leave it out: what it costs, what to do.
NO_WHEEL = {
    ("cv2", "Windows", "arm64"): (
        "opencv-python has no wheel for Windows on ARM64, so edgekit installs without it: loading, benchmarks "
        "and npu-check work, the image and video parts do not",
        "for the vision labs, use an x64 Python (emulated) or WSL; the NPU needs this ARM64 Python"),
}
# Wheels that install the same module and overwrite each other's files.
RIVALS = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml",
                    "onnxruntime-openvino"),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
            "opencv-contrib-python-headless"),
}
_REINSTALL = "pip install --force-reinstall {dist}"
_CRASH_FIX = {
    "SIGILL": "this CPU lacks an instruction the wheel needs; try an older wheel{older} or "
              "see the README for this board",
    "SIGSEGV": "a native library crashed; often two wheels clash (see 'duplicate wheels') or "
               "the wheel is for another platform: " + _REINSTALL,
    "SIGKILL": "killed from outside, usually for lack of memory: close other programs, retry",
}
_CRASH_FIX["SIGBUS"] = _CRASH_FIX["SIGSEGV"]
_NTSTATUS = {0xC000001D: "SIGILL", 0xC0000005: "SIGSEGV", 0xC0000409: "SIGABRT"}  # Windows
_ERROR_FIX = (  # (text in the error, fix): the classic install problems of a course
    ("DLL load failed", "install the Microsoft Visual C++ Redistributable "
     "(https://aka.ms/vs/17/release/vc_redist.{vc}.exe), then run edgekit doctor again"),
    ("GLIBC_", "this wheel needs a newer Linux than this one: upgrade the OS or try an older "
     "wheel{older}"),
    ("NumPy 1.x", 'a package was built for NumPy 1: pip install "numpy<2" or upgrade it'),
)
# On Windows, stop a crashing child from opening a "python has stopped working" dialog.
_PRELUDE = ("import ctypes; ctypes.windll.kernel32.SetErrorMode(0x8003)\n"
            if sys.platform == "win32" else "")
_IMPORT = ("import importlib, json; m = importlib.import_module({module!r}); p = getattr(m, "
           "'get_available_providers', None); print({mark!r} + json.dumps({{'version': "
           "getattr(m, '__version__', None), 'providers': p() if p else None}}))")
_INFER = f"""import json, numpy as np, onnx, onnxruntime as ort
from onnx import TensorProto, helper
v = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3])
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "doctor", [v("x")], [v("y")])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8  # old enough for every onnxruntime edgekit supports
s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
x = np.array([[-1.5, 0.0, 2.0], [3.0, -4.0, 0.25]], np.float32)
err = np.abs(s.run(None, {{"x": x}})[0] - np.maximum(x, 0)).max()  # numpy is the oracle
print({_MARK!r} + json.dumps({{"max_abs_err": float(err)}}))"""
_DEVICE = ("import json, edgekit.runtime.device as d; i = d.device_info(); "
           f"print({_MARK!r} + json.dumps({{'summary': str(i), 'info': i.to_dict()}}))")
_ZOO = f"""import importlib, json
try:
    rows = [dict(name=str(r.name), ok=bool(r.ok), detail=str(r.detail))
            for r in importlib.import_module("edgekit.runtime.zoo").verify_all()]
except (ImportError, AttributeError):  # an edgekit without a zoo: nothing to check
    rows = None
print({_MARK!r} + json.dumps(rows))"""


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # "ok" | "warn" (works; something optional is missing) | "fail"
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.level != "fail"

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass
class DoctorReport:
    checks: list[Check]
    device: dict | None = None  # DeviceInfo.to_dict(), probed in a child interpreter
    providers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    device_summary: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "ok": self.ok, "seconds": round(self.seconds, 3),
                "device": self.device, "providers": self.providers,
                "checks": [c.to_dict() for c in self.checks]}

    def __str__(self) -> str:
        """Plain text, one line per check (``render`` prints the rich table)."""
        rows = [f"{c.level.upper():<4}  {c.name}: {c.detail}" + (f" — fix: {c.fix}" if c.fix else "")
                for c in self.checks]
        return "\n".join([f"edgekit doctor: {'ok' if self.ok else 'FAILED'} ({self.seconds:.1f} s)", *rows])

    def table(self):
        from rich.table import Table
        from rich.text import Text

        table = Table(title="edgekit doctor")
        for col in ("", "check", "detail", "fix"):
            table.add_column(col)
        style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        for c in self.checks:  # Text(), not markup: details may contain [brackets]
            table.add_row(Text(c.level.upper(), style[c.level]), c.name, Text(c.detail),
                          Text(c.fix or ""))
        return table

    def render(self, console=None) -> None:
        from rich.console import Console

        console = console or Console()
        console.print(self.device_summary, markup=False, highlight=False)
        console.print(self.table())
        bad = sum(not c.ok for c in self.checks)
        console.print(f"[bold red]{bad} problem(s) to fix[/]" if bad else
                      f"[green]All good[/] ({self.seconds:.1f} s)")


class _Child:
    """One check in a child interpreter: started now, judged later, so all of them overlap."""

    def __init__(self, name: str, code: str, module: str, dist: str):
        self.name, self.module, self.dist, self.started = name, module, dist, time.monotonic()
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        home = PACKAGE.parent
        if home.name not in ("site-packages", "dist-packages"):  # a source checkout: the child
            # must find this edgekit (but site-packages must never go before the stdlib)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(home), env.get("PYTHONPATH")]))
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-c", _PRELUDE + code], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, encoding="utf-8", errors="replace")
        except OSError as exc:  # no usable interpreter path (embedded Python, a sandbox)
            self.proc, self.error = None, str(exc)

    def judge(self, deadline: float) -> tuple[Check | None, object]:
        """``(failed Check or None, the child's JSON payload)``."""
        if self.proc is None:
            return Check(self.name, "fail", f"could not start Python: {self.error}"), None
        try:
            out, err = self.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return Check(self.name, "fail", f"no answer after {time.monotonic() - self.started:.1f}"
                         " s", f'python -c "import {self.module}" shows where it hangs'), None
        marked = [ln for ln in out.splitlines() if ln.startswith(_MARK)]
        payload = json.loads(marked[-1][len(_MARK):]) if marked else None
        return self._failure(self.proc.returncode, err), payload

    def _failure(self, rc: int, err: str) -> Check | None:
        version = _version(self.dist)
        older = f' (pip install "{self.dist}<{version}")' if version else f" of {self.dist}"
        vc = "arm64" if platform.machine().lower() == "arm64" else "x64"  # which VC++ runtime
        values = {"module": self.module, "dist": self.dist, "vc": vc, "older": older}
        sig = _NTSTATUS.get(rc & 0xFFFFFFFF) if rc > 0 else None
        if rc < 0:  # POSIX: killed by signal -rc
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
        if sig:
            fix = _CRASH_FIX.get(sig, _REINSTALL).format(**values)
            what = f"{self.module} {version}" if version else self.module
            return Check(self.name, "fail", f"{what} crashed with {sig}", fix)
        if rc:  # a Python exception: its last line says what went wrong
            last = ([ln for ln in err.splitlines() if ln.strip()] or [f"exit code {rc}"])[-1]
            fix = next((f for text, f in _ERROR_FIX if text in err), "python -c \"import "
                       "{module}\" shows the whole error; then " + _REINSTALL)
            return Check(self.name, "fail", last.strip()[:200], fix.format(**values))
        return None


def _missing(module: str) -> bool:
    try:  # finds the module without importing (so without running) it
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def _start_import(module: str, dist: str, code: str | None = None) -> _Child | None:
    if code is None and _missing(module):
        return None
    code = code or _IMPORT.format(module=module, mark=_MARK)
    return _Child(f"import {module}", code, module, dist)


def _judge_import(child: _Child | None, module: str, dist: str, extra: str | None,
                  required: bool, deadline: float) -> tuple[Check, dict | None]:
    level = "fail" if required else "warn"  # an optional module that is broken only warns
    if child is None:
        fix = f'pip install "edgekit[{extra}]"' if extra else f"pip install {dist}"
        why = "needed by edgekit" if required else f"optional: {fix}"
        return Check(f"import {module}", level, f"not installed ({why})", fix), None
    bad, payload = child.judge(deadline)
    if bad is not None:
        return Check(bad.name, level, bad.detail, bad.fix), None
    version = (payload or {}).get("version") or _version(dist) or "?"
    return Check(f"import {module}", "ok", f"{module} {version}"), payload


def check_import(module: str, *, dist: str | None = None, extra: str | None = None,
                 required: bool | None = None, code: str | None = None,
                 timeout: float = TIMEOUT_S) -> Check:
    """Import ``module`` (or run ``code`` in its place) in a child interpreter and judge it.

    ``extra`` names the edgekit extra that brings an optional module: missing, it only warns.
    """
    child = _start_import(module, dist or module, code)
    return _judge_import(child, module, dist or module, extra,
                         extra is None if required is None else required,
                         time.monotonic() + timeout)[0]


def lab_check(required: bool = False) -> Check:
    """Are the `lab` extra's packages all installed? Missing ones warn, or fail when ``required``
    (``run_checks(labs=True)``: lab 0's check, ``edgekit doctor --labs``).

    >>> lab_check().name
    'lab packages'
    """
    missing = [(module, dist) for module, dist in LAB if _missing(module)]
    if not missing:
        return Check("lab packages", "ok", f"all {len(LAB)} of the lab extra: " + ", ".join(d for _, d in LAB))
    names = ", ".join(dist + (f" ({LAB_WHY[module]})" if module in LAB_WHY else "") for module, dist in missing)
    fix = ('pip install -e ".[lab]" in the edgekit folder (offline: pip install --no-index --find-links '
           'WHEELHOUSE -e ".[lab]", see the README)')
    return Check("lab packages", "fail" if required else "warn",
                 f"missing {names}" + ("" if required else "; the labs need them"), fix)


def run_checks(timeout: float = TIMEOUT_S, labs: bool = False) -> DoctorReport:
    """Run every check, concurrently, and report; never raises on a broken installation.
    ``labs``: a package of the `lab` extra that is missing is a failure, not a warning.

    (``edgekit doctor --grading`` adds the rows of :func:`edgekit.grading.fence_check.checks`.)

    >>> run_checks().to_dict()["schema"]  # doctest: +SKIP
    'edgekit.doctor/1'
    """
    start, deadline = time.monotonic(), time.monotonic() + timeout
    absent = [m for m in ("onnxruntime", "onnx", "numpy") if _missing(m)]
    # Start everything before waiting for anything, the slowest children first.
    infer = None if absent else _Child("inference", _INFER, "onnxruntime", "onnxruntime")
    device = _Child("device", _DEVICE, "edgekit.runtime.device", "edgekit")
    zoo = _Child("model zoo", _ZOO, "edgekit.runtime.zoo", "edgekit")
    imports = [(spec, _start_import(*spec[:2])) for spec in IMPORTS]

    checks = [Check("python", "ok", f"{platform.python_version()} at {sys.executable}")]
    bad, dev = device.judge(deadline)
    info = dev["info"] if isinstance(dev, dict) else None
    if bad is None and info is None:
        bad = Check("device", "warn", "the device probe printed nothing")
    checks.append(bad or Check("device", "ok", f"{info['board'] or 'PC'}, {info['cpu_model']}, "
                               f"fingerprint {info['fingerprint']}"))
    providers: list[str] = []
    for (module, dist, extra, required), child in imports:
        check, payload = _judge_import(child, module, dist, extra, required, deadline)
        no_wheel = NO_WHEEL.get((module, platform.system(), platform.machine().lower()))
        if child is None and no_wheel:  # not a broken install: there is nothing to install
            check = Check(check.name, "warn", f"not installed: {no_wheel[0]}", no_wheel[1])
        checks.append(check)
        if module == "onnxruntime" and payload:
            providers = payload.get("providers") or []
    checks.append(lab_check(labs))
    for module, dists in RIVALS.items():
        present = [d for d in dists if _version(d)]
        if len(present) > 1:
            checks.append(Check("duplicate wheels", "warn", f"{' and '.join(present)} all "
                                f"install {module}", f"pip uninstall -y {' '.join(present)}, then "
                                f"pip install {present[0]}"))
    if infer is None:
        checks.append(Check("inference", "fail", f"cannot run: {', '.join(absent)} missing",
                            "pip install edgekit"))
    else:
        bad, res = infer.judge(deadline)
        err = res.get("max_abs_err") if isinstance(res, dict) else None
        ok = err is not None and err <= 1e-6
        checks.append(bad or Check("inference", "ok" if ok else "fail", f"a Relu on the CPU "
                                   f"provider; max |error| against numpy: {err}",
                                   None if ok else _REINSTALL.format(dist="onnxruntime")))
    checks += _providers_checks(providers, info or {})
    bad, rows = zoo.judge(deadline)
    if bad or rows is not None:
        checks.append(bad or _zoo_check(rows))
    summary = dev["summary"] if isinstance(dev, dict) else ""
    return DoctorReport(checks, info, providers, time.monotonic() - start, summary)


def _providers_checks(providers: list[str], info: dict, qnn: bool | None = None) -> list[Check]:
    """What this onnxruntime offers, and what ``providers="auto"`` picks here, and why
    (``qnn``: is onnxruntime-qnn installed; ``None``: look)."""
    from .providers import Platform, auto_choice

    family = info.get("board_family")
    detail = ", ".join(providers) or "none (onnxruntime did not import)"
    if not providers:
        return [Check("execution providers", "fail", detail, "see the 'import onnxruntime' check")]
    where = Platform.of(info.get("board"), family, qnn)
    choice = auto_choice(providers, where)
    listed = Check("execution providers", "ok", detail)
    if family == "snapdragon" and choice.plugin is None:
        listed = Check("execution providers", "warn", detail + "; no QNN for the Snapdragon NPU",
                       'pip install "edgekit[qnn]"' if where.system == "Windows" else
                       "none on this OS: onnxruntime-qnn has wheels for Windows on Snapdragon (see the README)")
    elif family == "jetson" and "CUDAExecutionProvider" not in providers:
        listed = Check("execution providers", "warn", detail + "; no CUDA for the Jetson GPU",
                       "install the onnxruntime-gpu wheel built for your JetPack (see the README)")
    return [listed, Check("auto picks", "ok", f"{choice.chosen}: {choice.reason.removeprefix('auto: ')}")]


def _zoo_check(rows: list[dict]) -> Check:
    bad = [r for r in rows if not r["ok"]]
    detail = f"{len(rows) - len(bad)}/{len(rows)} models verified"
    if not bad:
        return Check("model zoo", "ok", detail)
    return Check("model zoo", "fail", detail + "; " + "; ".join(f"{r['name']}: {r['detail']}"
                                                                for r in bad),
                 "edgekit models verify NAME shows more; re-download or rebuild that model")
