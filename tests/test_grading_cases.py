"""edgekit.grading.cases: comparisons judge correctly and their messages show the numbers."""

import numpy as np
import pytest

from edgekit.grading import call, close, equal, get, obj, ref, within
from edgekit.grading.cases import Case, resolve_local


def test_close_accepts_within_tolerance_and_reports_the_worst_element():
    c = close(atol=1e-3, rtol=0)
    assert c([1.0, 2.0005], np.array([1.0, 2.0])) is None
    msg = c(np.array([[1.0, 2.0], [3.0, 7.5]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert "max abs diff 3.5 at index (1, 1)" in msg and "got 7.5, expected 4" in msg, msg


@pytest.mark.parametrize("got, want, match", [
    (np.zeros(3), np.zeros(4), r"expected shape \(4,\), got shape \(3,\)"),
    ("text", np.zeros(2), "expected numbers"),
    (np.array([np.nan]), np.array([1.0]), "got nan"),
])
def test_close_failures(got, want, match):
    assert match.replace("\\", "") in close()(got, want) or __import__("re").search(match, close()(got, want))


def test_close_treats_nan_equal_to_nan():
    assert close()(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) is None


def test_equal_on_lists_arrays_and_types():
    assert equal()([1, 2], [1, 2]) is None
    assert equal()(np.int64(2), 2) is None  # numpy ints equal python ints
    assert "at [0]: expected 1, got 2" == equal()([2, 1], [1, 2])
    assert "at ['n']: expected 30, got 32" == equal()({"n": 32, "k": 1}, {"n": 30, "k": 1})
    assert "1 of 3 elements differ; first at (2,)" in equal()(np.array([1, 2, 4]), np.array([1, 2, 3]))
    assert equal()(True, 1) is not None  # a bool is not an int answer


def test_within_ignores_the_reference():
    assert within(0, 1)(0.5) is None
    assert "between 0 and 1, got 2" in within(0, 1)(2.0)
    assert "got str" in within(0, 1)("0.5")


def test_targets_describe_themselves_and_resolve_objects_locally():
    t = call("f", np.array([1.0, 2.0]), obj("fractions:Fraction", 1, 3), k=ref("g"))
    assert t.describe() == "f(np.array([1.0, 2.0], dtype=np.float64), Fraction(...), k=g)"  # pasteable: dtype kept
    ns = type("NS", (), {"f": staticmethod(lambda x, fr, k: (x.sum(), fr, k(2))), "g": staticmethod(lambda v: v * 10)})
    total, fr, kv = t(ns)
    assert (total, str(fr), kv) == (3.0, "1/3", 20)
    assert get("f").describe() == "f"
    assert resolve_local([obj("fractions:Fraction", 1, 2)], ns)[0] == 0.5


def test_case_outside_a_tests_file_is_an_error():
    from edgekit.grading import case

    with pytest.raises(RuntimeError, match="tests.py"):
        case("q1", "x", call("f"))


def test_public_cases_must_be_shippable():
    from edgekit.grading import cases as c

    c._COLLECTING.append([])
    try:
        with pytest.raises(TypeError, match="must use call"):
            c.case("q1", "fn", lambda ns: 1, public=True)
        c.case("q1", "ok", call("f"), public=True)
        assert isinstance(c._COLLECTING[-1][0], Case) and c._COLLECTING[-1][0].key == "q1: ok"
    finally:
        c._COLLECTING.pop()


def test_arguments_with_objects_survive_the_wire_unbuilt():
    from edgekit.grading.cases import from_wire, to_wire

    args = (np.arange(3), obj("fractions:Fraction", 1, 3), {"k": ref("g")}, [1, (2, 3)])
    back = from_wire(to_wire(args))
    assert back[1] == obj("fractions:Fraction", 1, 3) and back[2] == {"k": ref("g")} and back[3] == [1, (2, 3)]
    assert back[0].tolist() == [0, 1, 2]


def test_close_compares_dicts_key_by_key():
    assert close()({"a": 1.0, "b": [1.0, 2.0]}, {"b": [1.0, 2.0], "a": 1.0}) is None
    assert close()({"a": 1.0}, {"a": 1.0, "b": 2.0}) == "expected keys ['a', 'b'], got ['a']"
    assert close(atol=0.1, rtol=0)({"a": 1.0, "b": 3.0}, {"a": 1.05, "b": 2.0}).startswith("['b']: values differ")
    assert "expected a dict" in close()([1.0], {"a": 1.0})



@pytest.mark.parametrize("got, want, message", [
    (("Conv", 0.25 + 1e-12), ["Conv", 0.25], None),  # a pair: the name exactly, the number within tolerance
    (("Relu", 0.25), ("Conv", 0.25), "[0]: expected 'Conv', got 'Relu'"),
    (("Conv", 0.5), ("Conv", 0.25), "[1]: values differ: max abs diff 0.25"),
    ([None, [1.0, 2.0]], [None, [1.0, 2.0]], None),  # None exactly, then an array
    ([3.0, [1.0, 2.0]], [None, [1.0, 2.0]], "[0]: expected None, got 3.0"),
    ([None, None], [None, [1.0, 2.0]], "[1]: expected numbers like [1.0, 2.0], got NoneType"),
    ({"a": {"name": "x", "v": np.ones(3)}}, {"a": {"name": "x", "v": np.ones(3) + 1e-3}}, "['a']['v']: values differ"),
    ({"a": {"name": "y", "v": np.ones(3)}}, {"a": {"name": "x", "v": np.ones(3)}}, "['a']['name']: expected 'x', got 'y'"),
    ([np.ones(2), np.ones(3)], [np.ones(2), np.ones(3)], None),  # ragged: item by item
    ([np.ones(2)], [np.ones(2), np.ones(3)], "expected 2 items like"),
])
def test_close_compares_mixed_containers_part_by_part(got, want, message):
    msg = close(rtol=1e-9, atol=1e-9)(got, want)
    assert msg is None if message is None else msg.startswith(message), msg


def test_against_compares_with_an_oracle_not_the_reference():
    from edgekit.grading import against

    assert against(3.0, close())(3.0, 99.0) is None  # the reference's 99 is ignored
    assert "got 2, expected 3" in against(3.0)(2.0, 2.0)
    assert against(["a", 1], equal())(["a", 1], None) is None


def test_equal_names_a_list_of_another_length_and_shows_long_values():
    assert equal()([1, 2], [1, 2, 3]) == "the list: expected 3 items, got 2"
    assert equal()({"e": [1]}, {"e": [1, 2]}) == "['e']: expected 2 items, got 1"
    assert "y" * 100 in equal()("x" * 100, "y" * 100)  # a reason string is not cut at 40 characters

def test_raised_reads_real_and_transported_errors_alike():
    from edgekit.grading import raised
    from edgekit.grading.process import StudentError, StudentGone

    def boom(exc):
        def thunk():
            raise exc
        return thunk

    assert raised(boom(ValueError("bad level"))) == ("ValueError", "bad level")
    assert raised(boom(StudentError("ValueError: bad level"))) == ("ValueError", "bad level")
    assert raised(lambda: 1) == ("no error", "")
    with pytest.raises(StudentGone):
        raised(boom(StudentGone("the student process ended")))


def test_dtype_true_checks_the_returned_type_and_dtype_numpy_as_oracle():
    from edgekit.grading.cases import type_mismatch

    want = np.zeros((1, 3, 2, 2), np.float32)
    assert close(dtype=True)(want.copy(), want) is None and equal(dtype=True)(want.copy(), want) is None
    assert "float32" in close(dtype=True)(want.astype(np.uint8), want), "a uint8 array must fail"
    assert "got list" in close(dtype=True)(want.tolist(), want), "a nested list must fail"
    assert close()(want.tolist(), want) is None, "without dtype=True a list still passes (values only)"
    assert "expected int, got numpy.int64" in type_mismatch((np.float32(1), np.int64(3)), (np.float32(1), 3))
    assert "expected a tuple, got list" in type_mismatch([np.float32(1), 3], (np.float32(1), 3))
    assert type_mismatch({"a": [1.5]}, {"a": [2.5]}) is None  # values are close()'s business, not types'


def test_public_checks_catch_the_types_the_grader_marks_down():
    """Issue 15: lab01 q1 returning uint8 or a nested list, and lab05 quantize returning float32, passed
    check() and lost points in grading. The released public checks now fail them."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    from edgekit.grading.selfcheck import run_checks

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"

    def verdicts(lab, q, **answers):
        doc = json.loads((notebooks / lab / f"{lab}.checks.json").read_text())
        return [r.passed for r in run_checks(doc, SimpleNamespace(**answers), [q])]

    def nchw(bgr):
        return np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1)[None]).astype(np.float32)

    lab01 = "lab01-first-inference"
    assert all(verdicts(lab01, "q1", to_nchw_rgb=nchw)), "the right answer must pass"
    assert not all(verdicts(lab01, "q1", to_nchw_rgb=lambda bgr: nchw(bgr).astype(np.uint8)))
    assert not all(verdicts(lab01, "q1", to_nchw_rgb=lambda bgr: nchw(bgr).tolist()))

    def quantize(x, scale, zero_point, dtype):
        lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
        return np.clip(np.rint(np.asarray(x) / scale) + zero_point, lo, hi).astype(dtype)

    lab05 = "lab05-quant-maths"
    ok = verdicts(lab05, "q2", quantize=quantize, dequantize=lambda q, s, z: ((q.astype(np.float32) - z) * s)
                  .astype(np.float32))
    assert ok and ok[0], ok
    bad = verdicts(lab05, "q2", quantize=lambda *a: quantize(*a).astype(np.float32),
                   dequantize=lambda q, s, z: ((q.astype(np.float32) - z) * s).astype(np.float32))
    assert not bad[0], bad
