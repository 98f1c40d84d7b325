"""Shared fixtures: tiny ONNX models written with onnx.helper, and raw ONNX Runtime as the oracle."""

from __future__ import annotations

import gc
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper


def make_model(nodes, inputs, outputs, *, opset=17, ir_version=8, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgekit-tests")
    model.ir_version = ir_version
    return model


def save(model, path):
    onnx.save(model, str(path))
    return path


@pytest.fixture
def relu_path(tmp_path):
    """y = relu(x), x: float32[batch, 3]."""
    m = make_model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    return save(m, tmp_path / "relu.onnx")


@pytest.fixture
def add_path(tmp_path):
    """Two inputs: s = a + b (float32[2,3]) and a second output d = a - b."""
    m = make_model([helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Sub", ["a", "b"], ["d"])],
                   [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("a", "b")],
                   [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("s", "d")])
    return save(m, tmp_path / "add.onnx")


@pytest.fixture
def image_model_path(tmp_path):
    """A model taking an NCHW float image float32[1,3,4,5] and a weight initializer (20 params)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 4, 5], np.ones(60, np.float32).tolist())
    m = make_model([helper.make_node("Mul", ["img", "w"], ["out"])],
                   [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, 4, 5])],
                   [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 4, 5])],
                   initializers=[w])
    return save(m, tmp_path / "image.onnx")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def skip_or_fail(what: str, missing: list[str], setup: str, env: str) -> None:
    """Skip ``what`` when parts of its environment are ``missing``; fail instead when ``env`` is 1
    (CI sets it after running ``setup``: a check CI relies on never skips silently)."""
    if not missing:
        return
    msg = f"{what} needs {'; '.join(missing)}; run `{setup}`"
    if os.environ.get(env) == "1":
        pytest.fail(f"{msg} ({env}=1: not skipping)", pytrace=False)
    pytest.skip(msg)


def grade_forked(source, notebooks: dict, out, policy: str = "strict") -> dict:
    """Grade submissions of an nbgrader source notebook, each in a judge forked from this process, as
    the batch does in its workers (without a worker pool: seconds saved per assignment).

    ``notebooks``: ``{student: path or notebook text}``. Returns ``{student: record}``.
    """
    import shutil
    from pathlib import Path

    from edgekit.grading import load_lab
    from edgekit.grading.batch import _run_task, expected_file
    from edgekit.grading.judge import Task
    from edgekit.grading.lab import Limits
    from edgekit.grading.results import read_record

    out = Path(out)
    lab = load_lab(source)
    exp = expected_file(lab, out, lab.cases())
    tasks = []
    for student, nb in notebooks.items():
        sub = out.parent / "subs" / student / "submission.ipynb"
        sub.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, Path):
            shutil.copyfile(nb, sub)
        else:
            sub.write_text(nb)
        task = Task(lab=str(source), submission=str(sub), student=student, out=str(out),
                    scratch=str(out.parent / "scratch" / student), expected=str(exp),
                    limits=Limits(cpu_s=20, wall_s=30, call_s=10, cell_s=10, memory_mb=2048),
                    hide=[str(out), str(out.parent / "subs")], questions=len(lab.questions), nbgrader_policy=policy)
        tasks.append(task)
    import time

    running: dict[int, str] = {}  # as many judges at a time as cores, as the batch's pool workers would run

    def reap(until: int) -> None:
        while len(running) > until:
            for pid in list(running):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    student = running.pop(pid)
                    assert os.waitstatus_to_exitcode(status) == 0, f"the judge of {student} failed"
            time.sleep(0.02)

    # pytest's process has threads and garbage of earlier tests (ONNX Runtime sessions, whose destructor
    # joins thread-pool threads that a fork does not copy): collect it here, and freeze what is left, so
    # that no garbage collection in a judge or its student processes runs those finalizers and hangs.
    # (The batch's judges fork from single-threaded pool workers and need none of this.)
    gc.collect()
    gc.freeze()
    try:
        for task in tasks:
            reap(max(1, os.cpu_count() or 1) - 1)
            pid = os.fork()
            if pid == 0:
                os._exit(_run_task(task))
            running[pid] = task.student
        reap(0)
    finally:
        gc.unfreeze()
    return {t.student: read_record(out / t.student) for t in tasks}
