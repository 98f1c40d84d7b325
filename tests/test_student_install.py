"""The student's install, end to end and offline: a wheelhouse fetched once (``edgekit wheelhouse DIR
--platform this``, by ``bash tests/student/setup.sh``), then in a fresh venv with no network

    pip install --no-index --find-links DIR -e ".[lab]"

(the README's classroom recipe; pip runs ``--isolated``, so no pip.conf or PIP_* variable adds an
index or a local wheel folder), and every released notebook runs top to bottom in that venv's
Jupyter kernel. Students' answers are stubs: the only errors expected are their NotImplementedError.
On Linux the install and the notebooks run in a network namespace of their own (``unshare -rn``,
loopback only), so nothing can be fetched even by accident.

Without the wheelhouse this skips, unless ``EDGEKIT_REQUIRE_STUDENT=1`` (set by CI), which turns the
skip into a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import skip_or_fail

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "tests" / "student" / "setup.sh"
RUNNER = ROOT / "tests" / "student" / "run_notebooks.py"
NOT_LAB = ("pytest", "hypothesis", "sklearn", "scipy", "torch", "dask")  # in dev/dist/train, never in lab


def wheelhouse() -> Path:
    """The folder setup.sh fills for this checkout (the same key as the script's)."""
    key = hashlib.sha256(b"".join(p.read_bytes() for p in (ROOT / "pyproject.toml", ROOT / "edgekit" / "cli" /
                                                            "wheelhouse.py", SETUP))).hexdigest()[:12]
    cache = Path(os.environ.get("EDGEKIT_STUDENT_CACHE") or Path.home() / ".cache" / "edgekit-student")
    return cache / f"wheelhouse-{key}"


def _offline() -> list[str]:
    """A prefix that runs a command with no network but loopback (the kernel talks over it), or []."""
    prefix = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "offline"]
    works = (shutil.which("unshare") and shutil.which("ip")
             and subprocess.run([*prefix, "true"], check=False, capture_output=True).returncode == 0)
    return prefix if works else []


def test_offline_install_from_a_wheelhouse_runs_every_released_notebook(tmp_path):
    wh = wheelhouse()
    missing = [] if (wh / ".complete").is_file() else [f"the wheelhouse {wh}"]
    skip_or_fail("the offline student install", missing, "bash tests/student/setup.sh", "EDGEKIT_REQUIRE_STUDENT")
    offline = _offline()
    if sys.platform == "linux" and os.environ.get("EDGEKIT_REQUIRE_STUDENT") == "1":
        assert offline, "expected `unshare -rn` (an unprivileged network namespace) to work here, as the grader's fence needs"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "EDGEKIT_", "PYTHON", "JUPYTER", "VIRTUAL_ENV", "CONDA"))}
    env.update(EDGEKIT_CACHE=str(tmp_path / "cache"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),
               IPYTHONDIR=str(tmp_path / "ipython"), MPLCONFIGDIR=str(tmp_path / "mpl"), PIP_NO_CACHE_DIR="1",
               PIP_CONFIG_FILE=os.devnull)  # also for the pip that installs the build backend
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))

    start = time.perf_counter()
    install = subprocess.run([*offline, python, "-m", "pip", "--isolated", "install", "--no-index", "--find-links",
                              str(wh), "-e", f"{ROOT}[lab]"], check=False, env=env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, (f"expected `pip install --no-index --find-links {wh} -e .[lab]` to succeed with "
                                     f"no network, got exit {install.returncode}:\n{install.stdout[-3000:]}\n"
                                     f"{install.stderr[-3000:]}")
    installed = time.perf_counter() - start
    probe = f"import importlib.util as u, json; print(json.dumps([m for m in {NOT_LAB!r} if u.find_spec(m)]))"
    extra = subprocess.run([python, "-c", probe], check=False, env=env, capture_output=True, text=True)
    assert json.loads(extra.stdout) == [], f"expected a venv of .[lab] only, found {extra.stdout} ({extra.stderr})"

    work = tmp_path / "work"
    work.mkdir()
    start = time.perf_counter()
    run = subprocess.run([*offline, python, str(RUNNER), str(ROOT / "notebooks"), str(work)], check=False, env=env,
                         capture_output=True, text=True, timeout=1800)
    marked = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    assert run.returncode == 0 and marked, f"the notebook runner failed (exit {run.returncode}):\n{run.stderr[-4000:]}"
    result = json.loads(marked[-1].removeprefix("RESULT "))
    labs = sorted(p.name for p in (ROOT / "notebooks").iterdir() if (p / f"{p.name}.ipynb").is_file())
    assert sorted(result) == labs, f"expected every released notebook {labs}, ran {sorted(result)}"
    unexpected = {lab: [e for e in r["errors"] if e[1] != "NotImplementedError"] for lab, r in result.items()}
    unexpected = {lab: errs for lab, errs in unexpected.items() if errs}
    assert not unexpected, f"expected only the stubs' NotImplementedError, got (cell, error, message): {unexpected}"
    unrun = {lab: f"{r['cells']}/{r['code_cells']}" for lab, r in result.items() if r["cells"] != r["code_cells"]}
    assert not unrun, f"expected every code cell to run, ran: {unrun}"
    print(f"\n[student] offline install from {len(list(wh.glob('*.whl')))} wheels in {installed:.0f} s "
          f"({'no network: unshare -rn' if offline else '--no-index only'}); {len(labs)} notebooks in "
          f"{time.perf_counter() - start:.0f} s")
