"""Tests of Lab 11 (capstone). Nothing depends on the speed of the machine: choose() is judged on the
shipped (simulated) table; the deployed model is audited by the grader from the bytes of the file
the student's deploy() wrote (it loads, accuracy on the digits test split, size), in a fenced child
process with the lab's call_s and memory_mb limits (a model is data that drives ONNX Runtime: a Loop
of 10^12 iterations must fail its own audit, not hang the grader); the report is judged on its
internal consistency and on agreeing with that file."""

import copy
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from edgekit.grading import call, case, equal, load_lab, within

HERE = Path(__file__).parent
LIMITS = load_lab(HERE).limits
_spec = importlib.util.spec_from_file_location("lab11_support_grader", HERE / "lab11_support.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

ROWS = json.loads((HERE / "lab11_candidates.json").read_text())["candidates"]
BUDGET = support.BUDGET


def budget(p99, acc=BUDGET["min_accuracy"], size=BUDGET["max_size_bytes"]):
    return {"max_p99_ms": p99, "min_accuracy": acc, "max_size_bytes": size}


# -- q1: choose --------------------------------------------------------------------------------------
case("q1", "p99 <= 0.5 ms with the lab's budget", call("choose", ROWS, budget(0.5)), equal(), public=True)
case("q1", "p99 <= 10 ms: batching wins", call("choose", ROWS, budget(10.0)), equal())
case("q1", "p99 <= 0.2 ms", call("choose", ROWS, budget(0.2)), equal())
case("q1", "nothing meets p99 <= 0.01 ms: None (and p99 <= 0.5 ms: a row)",
     lambda ns: [ns.choose(ROWS, budget(0.01)), ns.choose(ROWS, budget(0.5))], equal(), weight=2)
case("q1", "no size limit, 98% accuracy", call("choose", ROWS, budget(1.0, 0.98, 10**9)), equal())
case("q1", "95% accuracy and 28 kB: per-tensor only", call("choose", ROWS, budget(1.0, 0.95, 28_000)), equal())
tie = [{"name": n, "p50_ms": p, "p99_ms": 1.0, "accuracy": 0.99, "size_bytes": s, "batch": b}
       for n, p, s, b in (("c", 0.8, 100, 8), ("b", 0.1, 200, 1), ("a", 0.1, 200, 1), ("d", 0.1, 150, 1))]
case("q1", "ties: per image, then size, then name", call("choose", tie, budget(1.0, 0.9, 1000)), equal())
case("q1", "ties: the same time per image, then name",
     call("choose", [tie[1], tie[2]], budget(1.0, 0.9, 1000)), equal())
case("q1", "limits are inclusive", call("choose", tie[:1], budget(1.0, 0.99, 100)), equal())

# -- q2 and q3: the deployed file and the report, audited in the grader ---------------------------------
_cache: dict = {}  # id(ns) -> (ns, memo): ns is kept alive, so its id is not reused; the last few only


def _memo(ns) -> dict:
    if id(ns) not in _cache:
        while len(_cache) >= 4:
            _cache.pop(next(iter(_cache)))
        _cache[id(ns)] = (ns, {})
    return _cache[id(ns)][1]


_audits: dict = {}  # sha256 of a model -> its audit: the same file is audited once (a hung one costs call_s once)


def _audit(model: bytes) -> dict:
    """The audit of a model's bytes, made in a fenced child process, never in the grader itself."""
    key = hashlib.sha256(model).hexdigest()
    if key not in _audits:
        while len(_audits) >= 8:
            _audits.pop(next(iter(_audits)))
        _audits[key] = support.audit_fenced(model, wall_s=LIMITS.call_s, memory_mb=LIMITS.memory_mb)
    return copy.deepcopy(_audits[key])


def _deployed(ns):
    """Call the student's deploy() once per process; audit the file's bytes (fenced, see _audit)."""
    memo = _memo(ns)
    if "audit" not in memo:
        memo["audit"] = _audit(ns.lab11_support.file_bytes(ns.deploy("graded.onnx")))
    return memo["audit"]


def _report(ns):
    memo = _memo(ns)
    if "report" not in memo:
        path = ns.deploy("graded-report.onnx")
        memo["report"] = (ns.report(path, 150), _audit(ns.lab11_support.file_bytes(path)))
    return copy.deepcopy(memo["report"])


def loads(ns):
    a = _deployed(ns)
    return "loads" if a["loads"] else f"does not load: {a['error']}"


def accuracy(ns):
    return _deployed(ns)["accuracy"]


def size(ns):
    a = _deployed(ns)  # the size of a model, so of a file that loads: 10 bytes of anything do not meet the budget
    return a["size_bytes"] if a["loads"] else f"no size: the file does not load ({a['error']})"


def says_loads(got, want):
    """equal(), with the whole reason when it does not load (equal() would cut it at 40 characters)."""
    return None if got == want else str(got)


case("q2", "your file meets the budget (measured in your notebook)", call("deployed_budget"), equal(), public=True)
case("q2", "the file loads in ONNX Runtime and takes a (N, 1, 8, 8) batch", loads, says_loads)
case("q2", "accuracy >= 0.97, measured by the grader", accuracy, within(BUDGET["min_accuracy"], 1.0), weight=2)
case("q2", "size <= 40,000 bytes, measured by the grader", size, within(1, BUDGET["max_size_bytes"]), weight=2)


def report_consistent(ns):
    return support.report_problems(_report(ns)[0])


def report_matches_file(ns):
    r, a = _report(ns)
    problems = []
    if not isinstance(r, dict) or "size_bytes" not in r or "accuracy" not in r:
        return ["the report has no size_bytes or accuracy"]
    if not a["loads"]:  # a report cannot agree with a file the grader could not measure
        return [f"the file does not load, so no report agrees with it: {a['error']}"]
    if r["size_bytes"] != a["size_bytes"]:
        problems.append(f"size_bytes {r['size_bytes']} but the file has {a['size_bytes']} bytes")
    if not np.isclose(r["accuracy"], a["accuracy"], atol=1e-9):
        problems.append(f"accuracy {r['accuracy']} but the grader measures {a['accuracy']}")
    return problems


def report_runs(ns):
    r = _report(ns)[0]
    return len(r.get("samples_ms", [])) if isinstance(r, dict) else 0


case("q3", "your report is consistent, 100 samples (checked in your notebook)", call("report_problems_now"), equal(),
     public=True)
case("q3", "the report is consistent (checked by the grader)", report_consistent, equal(), weight=2)
case("q3", "size and accuracy agree with the file", report_matches_file, equal(), weight=2)
case("q3", "report(path, runs=150) gives 150 samples", report_runs, equal())
