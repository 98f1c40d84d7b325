"""edgekit.grading.fenced: trusted functions on untrusted data run in a fenced child, never in the judge;
and Lab 11's audit of a student's model goes through it (issue 13, point 4).

The Lab 11 checks run the lab's own case functions (tests.py, as the judge calls them) in a separate
Python process: on code that audits in-process, a Loop bomb would otherwise hang this test run for
ever. Its timeout is a hang guard, not a speed claim.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit import EdgekitError
from edgekit.grading.fenced import FencedCallError, fenced_call

ROOT = Path(__file__).parents[1]
LAB11 = ROOT / "labs" / "lab11-capstone"
LINUX = sys.platform.startswith("linux")


def _spin():
    while True:
        pass


def _raise():
    raise ValueError("bad input: -1")


def _vm_mb() -> int:
    """This process's address space now (the child starts with the same)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmSize in /proc/self/status")


# -- fenced_call ---------------------------------------------------------------------------------------

def test_returns_the_value_as_data():
    assert fenced_call(pow, 2, 10, wall_s=30) == 1024
    got = fenced_call(lambda a: {"sum": a.sum(), "rows": (a[0], "x")}, np.arange(6.0).reshape(2, 3), wall_s=30)
    assert got["sum"] == 15.0 and got["rows"][1] == "x", got
    np.testing.assert_array_equal(got["rows"][0], [0.0, 1.0, 2.0])


def test_a_function_that_never_returns_is_killed_at_wall_s():
    with pytest.raises(FencedCallError) as err:
        fenced_call(_spin, wall_s=1, cpu_s=60)
    assert err.value.reason == "timeout", str(err.value)
    assert "did not finish within wall_s = 1 s" in str(err.value)
    assert isinstance(err.value, EdgekitError)


def test_cpu_seconds_are_limited():
    with pytest.raises(FencedCallError) as err:
        fenced_call(_spin, wall_s=60, cpu_s=1)
    assert err.value.reason == "cpu", str(err.value)
    assert "cpu_s = 1 s" in str(err.value)


def test_an_exception_comes_back_as_its_type_and_message():
    with pytest.raises(FencedCallError) as err:
        fenced_call(_raise, wall_s=30)
    assert (err.value.reason, err.value.error) == ("raised", ("ValueError", "bad input: -1"))
    assert "raised ValueError: bad input: -1" in str(err.value)


def test_exit_without_a_reply_is_a_crash():
    with pytest.raises(FencedCallError) as err:
        fenced_call(os._exit, 3, wall_s=30)
    assert err.value.reason == "crashed" and "code 3" in str(err.value), str(err.value)


def test_a_segfault_is_a_crash_with_its_signal():
    with pytest.raises(FencedCallError) as err:
        fenced_call(ctypes.string_at, 0, wall_s=30)  # reads address 0
    assert err.value.reason == "crashed" and "SIGSEGV" in str(err.value), str(err.value)


@pytest.mark.skipif(not LINUX, reason="RLIMIT_AS is enforced on Linux only (macOS ignores it)")
def test_memory_over_memory_mb_fails():
    limit = _vm_mb() + 256  # the child starts as big as this process: leave it 256 MiB more
    with pytest.raises(FencedCallError) as err:
        fenced_call(lambda: len(bytearray(2**30)), wall_s=30, memory_mb=limit)  # 1 GiB
    assert err.value.reason == "memory", str(err.value)
    assert f"memory_mb = {limit} MiB" in str(err.value)
    assert fenced_call(lambda: len(bytearray(2**20)), wall_s=30, memory_mb=limit) == 2**20  # 1 MiB fits


def test_something_that_is_not_data_stays_in_the_child():
    with pytest.raises(FencedCallError) as err:
        fenced_call(object, wall_s=30)
    assert err.value.reason == "reply" and "object" in str(err.value), str(err.value)


def test_the_child_works_in_an_empty_folder_writes_nothing_and_inherits_no_descriptor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text("the answers")
    r, w = os.pipe()  # stands for the judge's pipes to student processes

    def look():
        try:
            with open("out.txt", "w") as f:
                f.write("x" * 100_000)
                f.flush()
            wrote = "yes"
        except OSError as exc:
            wrote = type(exc).__name__
        open_fds = []
        for fd in (r, w):
            try:
                os.fstat(fd)
                open_fds.append(fd)
            except OSError:
                pass
        return {"cwd": os.getcwd(), "listing": sorted(os.listdir(".")), "wrote": wrote, "fds": open_fds}

    try:
        got = fenced_call(look, wall_s=30)
    finally:
        os.close(r), os.close(w)
    assert got["cwd"] != str(tmp_path) and "secret.txt" not in got["listing"], got
    assert got["wrote"] != "yes" and got["fds"] == [], got
    assert not Path(got["cwd"]).exists(), "the child's working folder is removed afterwards"


def test_processes_the_child_started_are_killed_with_it():
    def start_sleeper():
        pid = os.fork()
        if pid == 0:
            time.sleep(3600)
            os._exit(0)
        return pid

    pid = fenced_call(start_sleeper, wall_s=30)
    for _ in range(100):  # SIGKILL is immediate; the orphan may still wait a moment for init to reap it
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        raise AssertionError(f"the grandchild {pid} outlived the fenced call")


def _network_namespaces() -> bool:
    """Whether a child here may have a network namespace of its own (as root, or in a user namespace)."""
    if not LINUX:
        return False
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(0x40000000) == 0 or libc.unshare(0x50000000) == 0 else 1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@pytest.mark.skipif(not _network_namespaces(), reason="this kernel or container allows no network namespace here")
def test_no_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        code = fenced_call(lambda: socket.socket().connect_ex(("127.0.0.1", port)), wall_s=30)
    finally:
        server.close()
    assert code != 0, "the fenced child reached a server of the host on 127.0.0.1"


def test_without_fork_it_refuses_rather_than_run_unfenced(monkeypatch):
    monkeypatch.delattr(os, "fork")
    with pytest.raises(FencedCallError) as err:
        fenced_call(pow, 2, 3, wall_s=5)
    assert err.value.reason == "unsupported" and "WSL" in str(err.value)


# -- Lab 11: the judge audits a student's model fenced --------------------------------------------------

def _loop_bomb() -> bytes:
    """A model with the right input and output whose Loop runs 10^12 trivial iterations."""
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    consts = {"M": np.array(10**12, np.int64), "c": np.array(True), "st": np.array([0], np.int64),
              "en": np.array([10], np.int64), "ax": np.array([1], np.int64)}
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Slice", ["f", "st", "en", "ax"], ["s"]),
         helper.make_node("Loop", ["M", "c", "s"], ["y"], body=body)], "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def _external_data_model(location: str) -> bytes:
    """x -> Flatten -> MatMul(W) + b, where the bias b (10 float32) is external data in ``location``."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.eye(64, 10, dtype=np.float32), "W")
    b = TensorProto(name="b", data_type=TensorProto.FLOAT, dims=[10], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "40")):
        b.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["y"])], "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


_JUDGE = """
import json, sys, types
from edgekit.grading import load_lab
lab_dir, model_path = sys.argv[1], sys.argv[2]
model = open(model_path, "rb").read()
# the student's process, as the judge sees it: deploy() writes the model, file_bytes() sends its bytes,
# report() describes that file as well as anyone can (its size, and no accuracy)
ns = types.SimpleNamespace(deploy=lambda out: out, file_bytes=lambda path: model,
                           lab11_support=types.SimpleNamespace(file_bytes=lambda path: model),
                           report=lambda path, runs: {"size_bytes": len(model), "accuracy": 0.0})
cases = [c for c in load_lab(lab_dir).cases() if (c.question == "q2" and not c.public)
         or getattr(c.target, "__name__", "") == "report_matches_file"]
want = {"loads": "loads"}
verdicts = {}
for c in cases:
    got = c.target(ns)
    verdicts[c.target.__name__] = {"got": got, "failure": c.compare(got, want.get(c.target.__name__))}
print(json.dumps(verdicts))
"""


def _lab11_copy(tmp_path: Path, call_s: float) -> Path:
    """Lab 11 with a short call_s (the real one allows 30 s)."""
    lab = tmp_path / "lab11"
    shutil.copytree(LAB11, lab, ignore=shutil.ignore_patterns("__pycache__"))
    toml = (lab / "lab.toml").read_text()
    (lab / "lab.toml").write_text(toml.replace("call_s = 30", f"call_s = {call_s}"))
    return lab


def _judge_q2(lab: Path, model: bytes, cwd: Path) -> dict:
    """The verdicts of lab11's checks of a deployed file (q2's hidden cases, and q3's "agrees with the
    file") on ``model``, computed as the judge computes them."""
    (cwd / "model.onnx").write_bytes(model)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's edgekit, whatever the folder
    done = subprocess.run([sys.executable, "-c", _JUDGE, str(lab), str(cwd / "model.onnx")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)  # a hang guard, not a speed claim
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fenced audit needs os.fork")
def test_lab11_loop_bomb_fails_its_audit_after_call_s(tmp_path):
    lab = _lab11_copy(tmp_path, call_s=2)
    try:
        verdicts = _judge_q2(lab, _loop_bomb(), tmp_path)
    except subprocess.TimeoutExpired:
        raise AssertionError("auditing a model with a Loop of 10^12 iterations did not stop at call_s") from None
    assert set(verdicts) == {"loads", "accuracy", "size", "report_matches_file"}, verdicts
    assert all(v["failure"] for v in verdicts.values()), verdicts  # every check of the file fails
    # stopped at call_s of wall time, or earlier at its CPU limit when ONNX Runtime's threads add up
    got = verdicts["loads"]["got"]
    assert "did not finish within wall_s = 2 s" in got or "more than cpu_s = 2 s" in got, verdicts["loads"]
    assert verdicts["accuracy"]["got"] == 0.0
    assert str(verdicts["size"]["got"]).startswith("no size"), verdicts["size"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fenced audit needs os.fork")
def test_lab11_refuses_external_data_without_reading_it(tmp_path):
    lab = _lab11_copy(tmp_path, call_s=30)
    judge = tmp_path / "judge"  # the grader's working folder, holding a secret the model names
    judge.mkdir()
    model = _external_data_model("secret.bin")
    runs = []
    for secret in (b"expected: 12/12 (a secret)\0\0\0\0\0\0\0\0\0\0\0\0\0\0", np.arange(10, dtype=np.float32).tobytes(),
                   None):
        (judge / "secret.bin").unlink(missing_ok=True)
        if secret is not None:
            (judge / "secret.bin").write_bytes(secret)
        runs.append(_judge_q2(lab, model, judge))
    assert runs[0] == runs[1] == runs[2], f"the verdict depends on a file the model names: {runs}"
    loads = runs[0]["loads"]["got"]
    assert "external data (file 'secret.bin')" in loads and "save_as_external_data=False" in loads, loads
    assert all(v["failure"] for v in runs[0].values()), runs[0]


def test_lab11_support_lists_external_files_in_subgraphs_too():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lab11_support_under_test", LAB11 / "lab11_support.py")
    lab11_support = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab11_support)
    assert lab11_support.external_files(_external_data_model("w.bin")) == ["w.bin"]
    assert lab11_support.external_files(_loop_bomb()) == []
    import onnx

    bomb = onnx.load_model_from_string(_loop_bomb())  # put an external tensor inside the Loop's body
    inner = onnx.load_model_from_string(_external_data_model("deep.bin")).graph.initializer[1]
    bomb.graph.node[2].attribute[0].g.initializer.append(inner)
    assert lab11_support.external_files(bomb.SerializeToString()) == ["deep.bin"]


_DEPLOY = '''SETTINGS = {"precision": "int8", "threads": 1, "optimization": "all", "batch": 1}
GOOD = ek.quantize("digits-cnn", "good.onnx", method="static", per_channel=True, measure=False).output  # once


def deploy(out="deployed.onnx"):
    """The reference model for the notebook's own checks; GRADED for the grader's audit (graded*.onnx)."""
    if Path(out).name.startswith("graded"):
        import base64
        Path(out).write_bytes(base64.b64decode("%s"))
        return str(out)
    shutil.copyfile(GOOD, out)
    return str(out)
'''

_BATCH = """
import json, sys
from edgekit.grading import grade_batch
res = grade_batch(sys.argv[1], sys.argv[2], sys.argv[3], jobs=2, progress=False)
print(json.dumps({r["student"]: r for r in res.records}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="grading needs os.fork")
def test_lab11_batch_with_a_loop_bomb_finishes(tmp_path):
    """A deploy() that hands the grader a Loop bomb (and its own checks a good model) scores on the file's
    checks what a file that does not load scores: nothing; the batch finishes with every grade."""
    import base64
    import signal

    import nbformat

    from edgekit.grading import load_lab
    from edgekit.grading.notebook import read_notebook, role

    lab_dir = _lab11_copy(tmp_path, call_s=8)
    lab = load_lab(lab_dir)
    for student, graded in (("bomb", _loop_bomb()), ("garbage", b"not an ONNX model")):
        nb = read_notebook(lab.notebook_path)
        for cell in nb.cells:
            if role(cell) == ("answer", "q2"):
                cell.source = _DEPLOY % base64.b64encode(graded).decode()
        (tmp_path / "subs" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "subs" / student / f"{lab.id}.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _BATCH, str(lab_dir), str(tmp_path / "subs"), str(tmp_path / "out")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group: a hang guard can stop workers and judges too
    try:
        out, err = proc.communicate(timeout=900)  # a hang guard, not a speed claim
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("grading a lab11 batch with a Loop bomb did not finish") from None
    assert proc.returncode == 0, err[-3000:]
    records = json.loads(out.strip().splitlines()[-1])
    assert (tmp_path / "out" / "grades.csv").is_file()
    bomb, garbage = records["bomb"], records["garbage"]
    audited = {t["name"]: t for t in bomb["tests"] if t.get("question", (t.get("tags") or [None])[0]) == "q2"
               and t["visibility"] != "visible"}
    outputs = {name: t["output"] for name, t in audited.items()}
    assert len(audited) == 3 and all(t["status"] == "failed" for t in audited.values()), outputs
    stopped = "the grader stopped auditing your model (audit_bytes "  # at wall_s, or at its CPU limit
    assert any(stopped in t["output"] for t in audited.values()), outputs
    assert bomb["questions"]["q2"] == garbage["questions"]["q2"], (bomb["questions"], garbage["questions"])
