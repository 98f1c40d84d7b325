"""A student's lab in a real browser: JupyterLab on loopback, a released notebook, headless Chromium.

Starts JupyterLab (isolated config, data and runtime dirs, no token, 127.0.0.1 only) on a copy of
``notebooks/lab00-setup/`` (the notebook, its checks and support files), opens the notebook in Debian's Chromium
driven by Playwright, runs the setup cell (``check = ek.checker("lab00-setup")``), the device
fingerprint cell and the public check of question 1, and reads their outputs from the page.

Needs ``/usr/bin/chromium`` and the ``playwright`` package: ``bash tests/browser_setup.sh`` installs
both (CI runs it). Without them the test skips, unless ``EDGEKIT_REQUIRE_BROWSER=1`` (set by CI),
which turns the skip into a failure. Recipe and traps: shared/notes/browser.md.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import skip_or_fail

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("EDGEKIT_CHROMIUM", "/usr/bin/chromium"))
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LAB = "lab00-setup"
TIMEOUT_MS = 30_000  # any one wait in the page
# a cell the student adds at the end: a right answer to q1 (lab00's reference), then its check
ADDED = '''# an answer the student added
def count_cores(text):
    procs = processors(text)
    cores = {(p.get("physical id"), p["core id"]) for p in procs if "core id" in p}
    return len(procs), len(cores) if cores else len(procs)


check("q1")'''


def _missing() -> list[str]:
    missing = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"{CHROMIUM} (Debian's chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append("jupyterlab (pip install -e '.[lab]')")
    return missing


def _require_browser():
    skip_or_fail("the browser test", _missing(), "bash tests/browser_setup.sh", "EDGEKIT_REQUIRE_BROWSER")


# ---------------------------------------------------------------------------------------------
# the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent():  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _lab_dir(root: Path) -> Path:
    """A copy of the released notebook, its checks file and its support files, outputs cleared."""
    lab = root / "lab"
    shutil.copytree(NOTEBOOKS / LAB, lab, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    nb = json.loads((lab / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:  # a notebook must not "pass" on saved outputs
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "student-added", "metadata": {},
                        "outputs": [], "source": ADDED})
    # without a kernelspec JupyterLab asks "Select Kernel" in a dialog
    nb["metadata"].setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    (lab / f"{LAB}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    assert (lab / f"{LAB}.checks.json").is_file()
    return lab


def _jupyter_env(root: Path) -> dict:
    env = dict(os.environ)
    dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython"}
    for var, name in dirs.items():
        (root / name).mkdir()
        env[var] = str(root / name)
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_PREFER_ENV_PATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    (root / "config" / "labconfig").mkdir()
    (root / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    tracker = root / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return env


def _descendants(pid: int) -> list:
    import psutil
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group and all its descendants (kernels have their own
    sessions), then SIGKILL whatever is left: Jupyter's own shutdown can hang."""
    import psutil
    procs = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    _, alive = psutil.wait_procs(procs, timeout=1)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture
def lab_server(tmp_path):
    """(url, lab dir, log path, kernels) of a JupyterLab on a free loopback port; stopped at teardown."""
    _require_browser()
    lab = _lab_dir(tmp_path)
    env = _jupyter_env(tmp_path)
    port = _free_port()
    if _answers(port):
        pytest.fail(f"port {port} is already in use")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--PasswordIdentityProvider.hashed_password=",
           f"--ServerApp.root_dir={lab}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = tmp_path / "jupyter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=lab, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {url} in 60 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.25)
        yield url, lab, log, proc
    finally:
        _stop(proc)


# ---------------------------------------------------------------------------------------------
# the page


def _run_menu(page, label: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^" + re.escape(label) + "$")).click()


def _run_cell(page, cells, index: int) -> str:
    """Select cell `index` (command mode: click its prompt), run it from the Run menu, wait until it
    has an execution count, fail on an error output, and return its output text."""
    from playwright.sync_api import expect

    cell = cells.nth(index)
    prompt = cell.locator(".jp-InputArea-prompt")
    prompt.click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-selected\b"), timeout=TIMEOUT_MS)
    _run_menu(page, "Run Selected Cell and Do not Advance")
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=TIMEOUT_MS)  # "[*]" while running
    outputs = cell.locator(".jp-OutputArea-output")
    errors = cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    text = "\n".join(outputs.all_inner_texts())
    if errors.count():
        raise AssertionError(f"cell {index} wrote an error or to stderr:\n{text}")
    return text


def test_released_notebook_runs_in_a_real_browser(lab_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, lab, log, server = lab_server
    nb = json.loads((lab / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    src = ["".join(c["source"]) for c in nb["cells"]]
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]

    def find(needle: str) -> int:
        hits = [i for i in code if needle in src[i]]
        assert hits, f"no code cell of {LAB}.ipynb contains {needle!r}"
        return hits[0]

    setup = code[0]
    assert f'ek.checker("{LAB}")' in src[setup], "the first code cell is not the setup cell"
    steps = [  # (cell, texts its output must contain); each later cell needs the setup cell's names
        (setup, []),
        (find("ek.device_info()"), ["fingerprint", "governor:"]),
        (find("def processors"), ["blocks in the Raspberry Pi 4 file"]),  # reads the lab00-*.cpuinfo files
        (find("def count_cores"), []),
        # the stub: a failing check names the question, the error, and the student's cell and line
        (find('check("q1")'), ["FAIL  q1", "NotImplementedError", "Cell In[", "public checks passed"]),
        (find("# an answer the student added"), ["PASS  q1", "public checks passed", "hidden tests"]),
    ]

    shot = tmp_path / "failure.png"
    failure = None
    with sync_playwright() as pw:
        # XDG dirs in tmp_path: Chromium's crash-report database would otherwise go to ~/.config
        xdg = {f"XDG_{d.upper()}_HOME": str(tmp_path / "xdg" / d) for d in ("config", "cache", "data")}
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, env={**os.environ, **xdg},
                                     args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            try:
                page.goto(f"{url}/lab/tree/{LAB}.ipynb", wait_until="domcontentloaded")
                expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
                page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=60_000)
                tab = page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab[title^="Name: {LAB}.ipynb"]')
                expect(tab).to_be_visible()
                panel = page.locator(".jp-NotebookPanel:visible")
                cells = panel.locator(".jp-Notebook .jp-Cell")
                expect(cells.first).to_be_visible()
                expect(cells).to_have_count(len(nb["cells"]))
                # idle reads true for a moment while there is "No Kernel" yet: wait for the name too
                expect(panel.locator(".jp-KernelName")).to_have_text(re.compile("Python 3"), timeout=60_000)
                expect(panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_have_count(
                    1, timeout=60_000)
                expect(panel.locator(".jp-OutputArea-output")).to_have_count(0)  # nothing to "pass" on

                for index, expected in steps:
                    text = _run_cell(page, cells, index)
                    for needle in expected:
                        assert needle in text, f"cell {index}: {needle!r} not in its output:\n{text}"
            except Exception as exc:
                try:
                    page.screenshot(path=str(shot), full_page=True)
                    where = f"screenshot: {shot}"
                except Exception as shot_exc:  # noqa: BLE001 - the page may be gone
                    where = f"no screenshot ({shot_exc})"
                tail = log.read_text(errors="replace")[-2000:]
                failure = f"{type(exc).__name__}: {exc}\n{where}\nJupyterLab log (tail):\n{tail}"
        finally:
            browser.close()
    if failure:
        pytest.fail(failure, pytrace=False)
