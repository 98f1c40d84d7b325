"""The student's self-check tells the truth: one test per way issue 15 found it failing a student.

The demo lab (edgekit/grading/demo) is released into tmp_path; each test writes one student's
answer into it and runs ``edgekit check`` (the CLI), ``check_notebook`` or ``run_checks`` with
the kernel's namespace — the path ``check()`` takes in Jupyter.
"""

import json
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest

from edgekit.cli.main import main as cli
from edgekit.grading import release
from edgekit.grading.cases import call, close, to_wire
from edgekit.grading.kernel import Kernel
from edgekit.grading.local_limits import TimeLimit, time_limit
from edgekit.grading.notebook import read_notebook, role
from edgekit.grading.selfcheck import _Globals, run_checks
from edgekit.grading.wire import encode

DEMO = Path(__file__).parents[1] / "edgekit" / "grading" / "demo"
ANSWERS = {role(c)[1]: c.source for c in read_notebook(DEMO / "lab.ipynb").cells if role(c)[0] == "answer"}


@pytest.fixture
def lab(tmp_path):
    """The released demo notebook's path (a fresh release per test)."""
    nb_path = release(DEMO, tmp_path / "rel")[0]
    return Path(nb_path)


def _write(path: Path, answers: dict, added: list[tuple[int, str]] = (), limits: dict | None = None) -> Path:
    """The released notebook with the reference answers, some replaced by ``answers``, cells added."""
    nb = read_notebook(path)
    for c in nb.cells:
        if role(c)[0] == "answer":
            c.source = answers.get(role(c)[1], ANSWERS[role(c)[1]])
    for index, source in added:
        nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)
    if limits:
        checks = path.with_name(path.stem + ".checks.json")
        doc = json.loads(checks.read_text())
        doc["limits"].update(limits)
        checks.write_text(json.dumps(doc))
    return path


def _check(capsys, *argv) -> tuple[int, str]:
    rc = cli(["check", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_an_answer_in_an_added_cell_passes_and_an_ungraded_error_is_named_by_section_not_number(lab, capsys):
    stub = next(c.source for c in read_notebook(lab).cells if role(c) == ("answer", "q1"))
    path = _write(lab, {"q1": stub}, added=[(len(read_notebook(lab).cells), ANSWERS["q1"]),
                                            (len(read_notebook(lab).cells), "plot_demo = 1 / 0")])
    rc, out = _check(capsys, path, "q1")
    assert rc == 0, out  # the demo cell's error is listed, apart, and the question asked passes
    assert "PASS  q1: three logits" in out and "1/1 checks passed" in out
    assert 'the cell starting "plot_demo = 1 / 0"' in out and "ZeroDivisionError" in out
    assert "cell 1" not in out.split("Outside the questions")[1]
    assert "as saved on disk" in out and "hidden tests" in out


def test_uint8_instead_of_float32_shows_both_dtypes(lab, capsys):
    path = _write(lab, {"q2": "def to_nchw(image):\n    return image.transpose(2, 0, 1)[None]\n"})
    rc, out = _check(capsys, path, "q2")
    assert rc == 1 and "got a uint8 array, expected a float32 array" in out, out
    # the input is shown so that a pasted call reproduces: its dtype is kept
    doc = json.loads(path.with_name(path.stem + ".checks.json").read_text())
    assert doc["limits"]["call_s"] == 5  # the lab's own limits travel with the public checks


def test_a_list_instead_of_an_array_is_named(lab, capsys):
    path = _write(lab, {"q2": "def to_nchw(image):\n    return image.transpose(2, 0, 1)[None].tolist()\n"})
    rc, out = _check(capsys, path, "q2")
    assert rc == 1 and "got a list, expected a float32 array" in out, out


def test_an_attribute_error_in_the_students_code_is_reported_as_itself_with_their_line(lab, capsys):
    path = _write(lab, {"q1": "def softmax(logits):\n    x = list(logits)\n    return x.exp()\n"})
    rc, out = _check(capsys, path, "q1")
    assert rc == 1 and "raised AttributeError: 'list' object has no attribute 'exp'" in out, out
    assert "did you run" not in out and ", line 3, in softmax" in out


def test_a_missing_return_says_so(lab, capsys):
    path = _write(lab, {"q1": "def softmax(logits):\n    e = np.exp(logits - logits.max())\n    e / e.sum()\n"})
    rc, out = _check(capsys, path, "q1")
    assert rc == 1 and "softmax(np.array([1.0, 2.0, 3.0], dtype=np.float64)) returned None — did you forget `return`?" in out, out
    assert "shape ()" not in out


def test_an_infinite_loop_stops_at_the_graders_limit_in_a_call_and_in_a_cell(lab, capsys):
    loop = "def top_k(probs, k):\n    while True:\n        pass\n"
    path = _write(lab, {"q3": loop}, limits={"call_s": 0.5})
    rc, out = _check(capsys, path, "q3")
    assert rc == 1 and "top_k did not return within 0.5 s, the grader's limit" in out, out
    path = _write(lab, {"q3": "while True:\n    pass\n"}, limits={"cell_s": 0.5})
    rc, out = _check(capsys, path)
    assert "did not finish within 0.5 s, the grader's limit for a cell" in out, out


def test_the_time_limit_without_signals_stops_a_python_loop_in_a_thread():
    """Windows, or a kernel that runs cells off the main thread: the watchdog raises in the caller."""
    seen = []

    def spin():
        try:
            with time_limit(0.3):
                while True:
                    pass
        except TimeLimit as stop:
            seen.append(str(stop))

    t = threading.Thread(target=spin)
    t.start()
    t.join(30)
    assert not t.is_alive() and seen == ["did not return within 0.3 s"]


def test_100k_printed_lines_are_summarised_not_flooded(lab, capsys):
    loud = "def top_k(probs, k):\n    for i in range(100_000):\n        print('step', i)\n" + \
           "    return [int(i) for i in np.argsort(probs)[::-1][:k]]\n"
    path = _write(lab, {"q3": loud})
    rc, out = _check(capsys, path, "q3")
    assert rc == 0 and "printed 100,000 lines" in out and "over the grader's 64 KB" in out, out
    assert "first 5 shown" in out and "| step 4" in out and "step 5\n" not in out and len(out) < 5000


def test_a_mistyped_file_name_gets_the_name_meant(lab, capsys):
    rc, out = _check(capsys, lab.with_name("lab00-dmeo.ipynb"))
    assert rc == 2 and "no such file" in out and "did you mean" in out and "lab00-demo.ipynb" in out, out


def test_a_corrupt_notebook_points_to_jupyters_checkpoint(lab, capsys):
    saved = lab.parent / ".ipynb_checkpoints" / "lab00-demo-checkpoint.ipynb"
    saved.parent.mkdir()
    saved.write_bytes(lab.read_bytes())
    lab.write_text('{"cells": [')  # a save cut short
    rc, out = _check(capsys, lab)
    assert rc == 2 and ".ipynb_checkpoints/lab00-demo-checkpoint.ipynb" in out and "Revert" in out, out


def test_help_speaks_to_a_student(capsys):
    with pytest.raises(SystemExit):
        cli(["check", "--help"])
    out = capsys.readouterr().out
    assert "SAVED on disk" in out and "hidden tests" in out and "exit status" in out


def test_a_question_failing_because_an_earlier_questions_function_raised_says_which():
    kernel = Kernel(tracebacks=False)
    kernel.run("cell 2 (q3)", "def letterbox(x):\n    raise ValueError('bad size')")
    kernel.run("cell 4 (q4)", "def pipeline(x):\n    return letterbox(x) * 2")
    doc = {"lab": "t", "questions": {"q3": {}, "q4": {}}, "limits": {"call_s": 5, "output_kb": 64}, "cases": [
        {"question": q, "name": "n", "target": {"call": f, "args": to_wire((np.ones(9, np.uint8),)), "kwargs": to_wire({})},
         "compare": {"kind": "close", "rtol": 1e-5, "atol": 1e-8}, "expected": encode(np.ones(9))}
        for q, f in (("q3", "letterbox"), ("q4", "pipeline"))]}
    [r] = run_checks(doc, _Globals(kernel.ns), ["q4"], kernel.filename_label)
    assert "q4 calls your letterbox from q3, which raised ValueError: bad size" in r.message, r.message
    assert "cell 2 (q3), line 2, in letterbox" in r.message


def test_large_arrays_show_dtype_shape_and_the_input_where_the_answer_differs():
    from edgekit.grading.feedback import compared

    x = np.arange(8, dtype=np.uint8)
    msg = compared(call("dequantize", x), close(), x.astype(np.float32) * 2, x.astype(np.float32) * 2 + (x == 5))
    assert msg.startswith("dequantize(uint8 array of shape (8,))"), msg
    assert "at index (5,) (got 10, expected 11)" in msg and "the input (argument 1) is 5" in msg, msg
    assert "np.uint8" not in msg  # numpy 2 reprs do not leak


def test_the_grader_words_a_missing_return_as_check_does(lab, tmp_path):
    """One code path: the grader's feedback for a case is feedback.compared/raised, as in check()."""
    from edgekit.grading import grade_batch

    subs = tmp_path / "subs" / "s1"
    subs.mkdir(parents=True)
    _write(lab, {"q1": "def softmax(logits):\n    e = np.exp(logits - logits.max())\n    e / e.sum()\n"})
    (subs / lab.name).write_bytes(lab.read_bytes())
    res = grade_batch(DEMO, tmp_path / "subs", tmp_path / "out", jobs=1, progress=False)
    tests = json.loads((res.out / "s1" / "results.json").read_text())["tests"]
    q1 = next(t for t in tests if t["name"].startswith("q1: three logits"))
    assert q1["output"] == ("softmax(np.array([1.0, 2.0, 3.0], dtype=np.float64)) returned None — "
                            "did you forget `return`?"), q1
