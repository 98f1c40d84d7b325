"""The batch against what broke it (issue 13, "one submission breaks every batch"; issue 12, point 7).

- a deep folder chain (the attack: 1500 levels) left in scratch by a submission, or in the debris of a killed run;
- a student folder named like an output file (``grades.csv``);
- Ctrl-C and ``kill -9`` of ``edgekit grade`` while slow submissions are graded;
- hidden cases' inputs and expected values in what students see (``feedback`` policy);
- a stub ``Untitled.ipynb`` beside the renamed real notebook.

Batches run the ``edgekit grade`` CLI of this checkout in a child process (``python -m edgekit``),
on a copy of the demo lab with small limits, with ``TMPDIR`` inside the test's folder.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from edgekit.grading import load_lab, release
from edgekit.grading.cleanup import remove_tree
from edgekit.grading.lab import LabError
from edgekit.grading.results import HIDDEN_FAILED
from edgekit.grading.submissions import find_submissions

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's fence needs Linux")
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgekit" / "grading" / "demo"
NBGRADER = Path(__file__).parent / "fixtures" / "nbgrader" / "ps1.ipynb"
LIMITS = {"cpu_s": 4, "wall_s": 10, "call_s": 3, "memory_mb": 1024}
PARTIAL_Q1 = "def softmax(logits):\n    e = np.exp(np.asarray(logits, float))\n    return e / e.sum(axis=-1, keepdims=True)\n"
# the attack used 1500 levels, past Python's default recursion limit (1000) that shutil.rmtree
# recurses against; jedi (imported with IPython) raises the limit to 3000, so the chains here go
# further: 5000 levels, 10000 characters of path, past PATH_MAX too
DEPTH = 5000
DEEP = f"""\
import os
_top = os.getcwd()
for _ in range({DEPTH}):  # a folder chain deeper than shutil.rmtree's recursion can follow
    os.mkdir("d")
    os.chdir("d")
os.chdir(_top)
"""


# -- helpers ---------------------------------------------------------------------------------------

def _lab(root: Path, **toml) -> Path:
    """The demo lab with small limits (and extra top-level ``lab.toml`` keys)."""
    lab = root / "lab"
    shutil.copytree(DEMO, lab)
    text = (lab / "lab.toml").read_text()
    limits = "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in LIMITS.items()) + "\n"
    text, n = re.subn(r"\[limits\][^\[]*", lambda _: limits, text)
    assert n == 1, text
    (lab / "lab.toml").write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in toml.items()) + text)
    return lab


class Notebooks:
    """The released stub and the reference answers of a lab, and notebooks made of them."""

    def __init__(self, lab: Path, root: Path):
        (self.released, _checks) = release(lab, root / "released")
        self.stub = nbformat.read(self.released, as_version=4)
        src = nbformat.read(lab / "lab.ipynb", as_version=4)
        self.answer = {q: c.source for c in src.cells for q in ("q1", "q2", "q3") if c.get("id") == f"{q}-answer"}
        assert set(self.answer) == {"q1", "q2", "q3"}

    def make(self, **answers: str):
        """The reference solution, with the answer cells given here instead."""
        nb = copy.deepcopy(self.stub)
        for c in nb.cells:
            q = str(c.get("id", "")).removesuffix("-answer")
            if q in self.answer and str(c.get("id")).endswith("-answer"):
                c.source = answers.get(q, self.answer[q])
        return nb


def _write(folder: Path, nb, name: str = "lab00-demo.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def _grade_cmd(lab: Path, subs: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", "grade", str(lab), str(subs), "--out", str(out), *extra]


def _env(root: Path) -> dict:
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def _rows(out: Path) -> dict[str, dict]:
    with (out / "grades.csv").open(newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def _chain(top: Path, depth: int, name: str = "d") -> None:
    """A chain of ``depth`` folders under ``top``, made relative to descriptors (any depth, any length)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("leaf.txt", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    finally:
        os.close(fd)


def _dead_pid() -> int:
    """A pid no process can have: one above the kernel's pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return left


def _wait_gone(procs: list[psutil.Process], seconds: float) -> list[str]:
    end = time.monotonic() + seconds
    while _alive(procs) and time.monotonic() < end:
        time.sleep(0.1)
    return _alive(procs)


def _kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


# -- removing what students leave ------------------------------------------------------------------

def test_remove_tree_takes_a_chain_that_rmtree_cannot(tmp_path):
    _chain(tmp_path / "scratch", DEPTH)  # shutil.rmtree (Python 3.10, 3.11) raises RecursionError on it
    removal = remove_tree(tmp_path / "scratch")
    assert removal.complete and not (tmp_path / "scratch").exists(), str(removal)
    assert removal.removed == DEPTH + 2, removal.removed  # the folders, the top one and the leaf file


def test_remove_tree_goes_deeper_than_path_max(tmp_path):
    _chain(tmp_path / "scratch", 40, "x" * 200)  # 8000 characters of path below scratch
    assert len("/".join(["x" * 200] * 40)) > os.pathconf("/", "PC_PATH_MAX")
    removal = remove_tree(tmp_path / "scratch")
    assert removal.complete and not (tmp_path / "scratch").exists(), str(removal)


def test_remove_tree_never_follows_links_and_opens_locked_folders(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the student's")
    scratch = tmp_path / "scratch"
    (scratch / "locked" / "inner").mkdir(parents=True)
    (scratch / "locked" / "inner" / "f").write_text("x")
    (scratch / "link").symlink_to(outside)
    (scratch / "locked" / "link").symlink_to(outside / "keep.txt")
    os.chmod(scratch / "locked" / "inner", 0o500)
    os.chmod(scratch / "locked", 0)
    removal = remove_tree(scratch)
    assert removal.complete and not scratch.exists(), str(removal)
    assert (outside / "keep.txt").read_text() == "not the student's"
    assert remove_tree(tmp_path / "absent").complete  # nothing there: nothing to do, no error


# -- one batch of broken folders -------------------------------------------------------------------

@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A batch with a deep-chain submission, debris of a killed run, and a folder named grades.csv."""
    root = tmp_path_factory.mktemp("broken")
    lab = _lab(root)
    nbs = Notebooks(lab, root)
    subs, out = root / "subs", root / "out"
    _write(subs / "ref", nbs.make())
    _write(subs / "deep", nbs.make(q1=DEEP + nbs.answer["q1"]))
    _write(subs / "partial", nbs.make(q1=PARTIAL_Q1))
    _write(subs / "grades.csv", nbs.make())
    renamed = _write(subs / "renamed", nbs.make(), "lab00-demo (1).ipynb")
    stub = _write(subs / "renamed", nbs.stub, "Untitled.ipynb")
    os.utime(renamed, (time.time() - 600, time.time() - 600))  # the stub is the newest file, and sorts first
    (subs / "renamed" / ".ipynb_checkpoints").mkdir()
    _write(subs / "renamed" / ".ipynb_checkpoints", nbs.stub, "lab00-demo-checkpoint.ipynb")
    assert stub.stat().st_mtime > renamed.stat().st_mtime
    env = _env(root)
    debris = Path(env["TMPDIR"]) / f"edgekit-grade-{_dead_pid()}-abc123"
    _chain(debris / "someone", DEPTH)  # what a killed grader left, with a submission's chain inside
    run = subprocess.run(_grade_cmd(lab, subs, out, "--jobs", "2"), env=env, capture_output=True, text=True,
                         timeout=300)
    yield {"root": root, "lab": lab, "subs": subs, "out": out, "env": env, "run": run, "debris": debris}
    remove_tree(env["TMPDIR"])  # chains a failing grader left: pytest's own cleanup recurses too


@pytest.mark.slow  # a real `edgekit grade` run
def test_deep_chains_in_scratch_and_debris_leave_the_batch_whole(broken):
    run, out = broken["run"], broken["out"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert not broken["debris"].exists(), "the killed run's debris is still there"
    assert list(Path(broken["env"]["TMPDIR"]).glob("edgekit-grade-*")) == [], "this run's scratch folder is still there"
    rows = _rows(out)
    assert sorted(rows) == ["deep", "grades.csv", "partial", "ref", "renamed"], sorted(rows)
    assert rows["ref"]["score"] == "6" and rows["ref"]["status"] == "graded", rows["ref"]
    assert "deep" in rows
    # a later batch on the same machine runs too
    again = subprocess.run(_grade_cmd(broken["lab"], broken["subs"], out), env=broken["env"], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _rows(out)["ref"]["score"] == "6"


@pytest.mark.slow
def test_a_deep_chain_costs_its_author_nothing(broken):
    row = _rows(broken["out"])["deep"]
    assert (row["status"], row["score"]) == ("graded", "6"), row


@pytest.mark.slow  # a real `edgekit grade` run
def test_a_folder_named_like_an_output_file_is_refused_alone(broken):
    out = broken["out"]
    assert (out / "grades.csv").is_file()
    row = _rows(out)["grades.csv"]
    assert (row["status"], row["score"]) == ("refused", ""), row  # no grade, not a 0
    assert "rename these folders" in " ".join(broken["run"].stderr.split()), broken["run"].stderr[-2000:]
    assert not (out / ".edgekit" / "records" / "grades.csv.json").exists(), "a refused folder gets no files"


@pytest.mark.slow  # a real `edgekit grade` run
def test_the_notebook_named_for_the_lab_is_graded_not_the_newer_stub(broken):
    out = broken["out"]
    assert _rows(out)["renamed"]["score"] == "6", _rows(out)["renamed"]
    record = json.loads((out / "renamed" / "results.json").read_text())["extra_data"]
    notes = " ".join(record["notes"])
    assert "Untitled.ipynb was not graded" in notes and "lab00-demo (1).ipynb" in notes, record["notes"]
    assert "checkpoint" not in notes, record["notes"]  # .ipynb_checkpoints: ignored silently
    assert "Untitled.ipynb was not graded" in (out / "renamed" / "feedback.html").read_text()


@pytest.mark.slow  # a real `edgekit grade` run
def test_hidden_cases_show_name_and_pass_fail_only_by_default(broken):
    out = broken["out"]
    full = json.loads((out / ".edgekit" / "records" / "partial.json").read_text())
    hidden = next(t for t in full["tests"] if t["name"] == "q1: huge logits do not overflow")
    assert "expected 0.0900306" in hidden["output"], hidden  # the instructor's copy keeps the numbers
    for name in ("feedback.html", "results.json"):
        text = (out / "partial" / name).read_text()
        assert "0.0900306" not in text and hidden["output"] not in text, f"{name} shows a hidden case's values"
        assert "huge logits do not overflow" in text  # its name stays
    shown = {t["name"]: t for t in json.loads((out / "partial" / "results.json").read_text())["tests"]}
    assert shown["q1: huge logits do not overflow"]["output"] == HIDDEN_FAILED
    assert shown["q1: three logits"]["output"] == "ok"  # a public case keeps its message


@pytest.mark.slow  # a real `edgekit grade` run
def test_feedback_full_shows_hidden_inputs_and_expected_values(tmp_path):
    lab = _lab(tmp_path, feedback="full")
    nbs = Notebooks(lab, tmp_path)
    _write(tmp_path / "subs" / "partial", nbs.make(q1=PARTIAL_Q1))
    run = subprocess.run(_grade_cmd(lab, tmp_path / "subs", tmp_path / "out", "--jobs", "1"), env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    shown = {t["name"]: t for t in json.loads((tmp_path / "out" / "partial" / "results.json").read_text())["tests"]}
    assert "got nan, expected 0.0900306" in shown["q1: huge logits do not overflow"]["output"], shown
    assert "expected 0.0900306" in (tmp_path / "out" / "partial" / "feedback.html").read_text()


def test_an_unknown_feedback_policy_names_the_allowed_ones(tmp_path):
    with pytest.raises(LabError, match=r"feedback = 'everything'.*\"summary\".*\"full\""):
        load_lab(_lab(tmp_path, feedback="everything"))


# -- picking the notebook --------------------------------------------------------------------------

def test_notebook_picked_by_metadata_then_name_then_time(tmp_path):
    lab = load_lab(DEMO)
    released = nbformat.read(release(DEMO, tmp_path / "rel")[0], as_version=4)
    plain = copy.deepcopy(released)
    del plain.metadata["edgekit"]  # saved by a tool that dropped the lab's metadata
    subs = tmp_path / "subs"
    _write(subs / "meta", released, "final answers.ipynb")  # renamed, but its metadata says lab00-demo
    _write(subs / "meta", plain, "Untitled.ipynb")
    _write(subs / "copy", plain, "LAB00-DEMO-Copy1.ipynb")
    _write(subs / "copy", plain, "Untitled1.ipynb")
    _write(subs / "newest", plain, "a.ipynb")
    _write(subs / "newest", plain, "b.ipynb")
    (subs / "newest" / "helper.py").write_text("x = 1\n")
    for folder, older in (("meta", "final answers.ipynb"), ("copy", "LAB00-DEMO-Copy1.ipynb"), ("newest", "b.ipynb")):
        os.utime(subs / folder / older, (time.time() - 600, time.time() - 600))
    found = find_submissions(subs, lab)
    assert {s: f.notebook.name for s, f in found.items()} == {
        "meta": "final answers.ipynb", "copy": "LAB00-DEMO-Copy1.ipynb", "newest": "a.ipynb"}
    assert any("Untitled.ipynb was not graded" in n and "metadata" in n for n in found["meta"].notes), found["meta"].notes
    assert any("Untitled1.ipynb was not graded" in n for n in found["copy"].notes), found["copy"].notes
    assert any("helper.py was ignored" in n for n in found["newest"].notes), found["newest"].notes
    assert any("b.ipynb was not graded" in n and "most recently" in n for n in found["newest"].notes)


def test_nbgrader_notebook_picked_by_its_grade_ids(tmp_path):
    lab = load_lab(NBGRADER)
    (rel,) = release(NBGRADER, tmp_path / "rel")
    subs = tmp_path / "subs"
    (subs / "s").mkdir(parents=True)
    shutil.copy(rel, subs / "s" / "homework.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), subs / "s" / "Untitled.ipynb")
    os.utime(subs / "s" / "homework.ipynb", (time.time() - 600, time.time() - 600))
    found = find_submissions(subs, lab)["s"]
    assert found.notebook.name == "homework.ipynb", found
    assert any("Untitled.ipynb was not graded" in n for n in found.notes), found.notes


# -- Ctrl-C and kill -9 ----------------------------------------------------------------------------

def _slow_batch(root: Path, n: int, sleep_s: float) -> tuple[Path, Path, Path]:
    lab = _lab(root)
    nbs = Notebooks(lab, root)
    for i in range(n):
        _write(root / "subs" / f"s{i}", nbs.make(q1=f"import time\ntime.sleep({sleep_s})  # student {i}\n" + nbs.answer["q1"]))
    return lab, root / "subs", root / "out"


def _foreground_ctrl_c() -> None:
    """In the grader's child, before exec: SIGINT as a foreground job at a terminal has it. A test run
    started in the background by a script (`cmd &`) inherits SIGINT *ignored*, and a grader that
    inherits that rightly ignores Ctrl-C (test_grading_interrupt.py)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _forget_cgroups(before: set) -> None:
    groups = Path("/sys/fs/cgroup/pids/edgekit")
    for g in (set(groups.iterdir()) - before) if groups.is_dir() else ():
        try:
            g.rmdir()  # a killed judge's, empty now
        except OSError:
            pass


def _cgroups() -> set:
    groups = Path("/sys/fs/cgroup/pids/edgekit")
    return set(groups.iterdir()) if groups.is_dir() else set()


@pytest.mark.slow  # a real `edgekit grade` run
def test_ctrl_c_stops_the_batch_and_writes_what_was_graded(tmp_path):
    lab, subs, out = _slow_batch(tmp_path, 6, 2.0)
    groups = _cgroups()
    grader = subprocess.Popen(_grade_cmd(lab, subs, out, "--jobs", "1"), env=_env(tmp_path), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=_foreground_ctrl_c)
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/results.json")):
            assert grader.poll() is None, f"the grader ended (exit {grader.returncode}) first: {grader.stderr.read()}"
            assert time.monotonic() < deadline, "no submission graded after 120 s"
            time.sleep(0.05)
        tree = _tree(grader.pid)
        os.killpg(grader.pid, signal.SIGINT)  # what Ctrl-C at a terminal does: the whole foreground group
        try:
            _, err = grader.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the grader was still running 60 s after Ctrl-C")
        assert grader.returncode == 130, (grader.returncode, err[-3000:])
        assert "interrupted" in err and "run the same command again" in " ".join(err.split()), err[-3000:]
        rows = _rows(out)
        assert sorted(rows) == [f"s{i}" for i in range(6)], sorted(rows)
        done = {s for s, r in rows.items() if r["status"] == "graded"}
        left = {s for s, r in rows.items() if r["status"] == "not graded"}
        assert done and left and done | left == set(rows), rows
        assert all(rows[s]["score"] == "6" for s in done) and all(rows[s]["score"] == "" for s in left), rows
        assert _wait_gone(tree, 10) == [], "left running after Ctrl-C"
        # the same command grades the rest, and keeps what was graded
        again = subprocess.run(_grade_cmd(lab, subs, out, "--jobs", "2"), env=_env(tmp_path), capture_output=True,
                               text=True, timeout=300)
        assert again.returncode == 0, again.stderr[-3000:]
        assert {s: r["score"] for s, r in _rows(out).items()} == {f"s{i}": "6" for i in range(6)}
    finally:
        _kill_all(tree)
        if grader.poll() is None:
            os.killpg(grader.pid, signal.SIGKILL)
        _forget_cgroups(groups)


@pytest.mark.slow  # a real `edgekit grade` run
def test_kill_9_of_the_grader_takes_its_workers_judges_and_students_along(tmp_path):
    lab, subs, out = _slow_batch(tmp_path, 4, 5.0)
    groups = _cgroups()
    grader = subprocess.Popen(_grade_cmd(lab, subs, out, "--jobs", "2"), env=_env(tmp_path), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while True:  # until a judge runs: a process two levels below the grader
            kids = psutil.Process(grader.pid).children()
            judges = [j for k in kids for j in _tree(k.pid)]
            if judges:
                break
            assert grader.poll() is None, f"the grader ended (exit {grader.returncode}) first"
            assert time.monotonic() < deadline, "no judge started after 120 s"
            time.sleep(0.05)
        time.sleep(0.5)  # its student processes start
        tree = _tree(grader.pid)
        os.kill(grader.pid, signal.SIGKILL)  # the grader alone: nothing signals its children
        grader.wait(timeout=10)
        assert _wait_gone(tree, 10) == [], "left running after kill -9 of the grader"
        assert not list(out.glob("*/results.json")), "graded after the grader was killed"
    finally:
        _kill_all(tree)
        _forget_cgroups(groups)
