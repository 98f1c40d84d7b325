"""Hostile submissions against the grader (labs/README.md, "Threat model").

Every hostile submission is the reference solution plus one attack, so the attack's effect on
the score is a number: the questions it should not touch must keep their 2 points. They are all
graded in ONE batch (``jobs=2``), next to an honest reference submission and the released stubs,
on a copy of the demo lab with small limits, so that time-outs cost seconds, not minutes. The
batch runs ``grade_batch`` in a child process under a time limit: a grader that hangs fails this
module instead of hanging it, and code that escapes into the grading process runs there, not in pytest.

The kill/resume test has its own small batch, graded by the ``edgekit grade`` CLI.

Each test names the threat; the gaps found while writing them are fixed (see git history).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from edgekit.grading import grade_batch, load_lab, release

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fence needs Linux namespaces")]
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgekit" / "grading" / "demo"
LIMITS = {"cpu_s": 2, "wall_s": 8, "call_s": 2, "cell_s": 4, "memory_mb": 1024}
SLACK_S = 5.0  # killing, restarting and writing the files, on a busy 2-core machine
RUN = uuid.uuid4().hex[:10]  # unique markers for this run: files, `sleep` arguments, process names
SLEEP_ARG = f"1000.{int(RUN[:6], 16)}"  # `sleep 1000.<n>`: a process only this run starts
BOMB_COMM = f"ekbomb{RUN[:8]}"  # the fork bomb's processes rename themselves (15 chars at most)
TOKEN = f"edgekit-secret-token-{RUN}"  # an instructor's credential in the grader's environment
# the grader caps processes with a cgroup-v1 pids controller only (sandbox.make_pids_cgroup); without
# one, a real fork bomb would be capped by nothing but the deadline: not something to run on a host
PIDS_CGROUP = os.access("/sys/fs/cgroup/pids", os.W_OK)

FULL = {"q1": 2.0, "q2": 2.0, "q3": 2.0}


# -- building submissions -------------------------------------------------------------------------

def _src(text: str, **values) -> str:
    """Dedent ``text`` and replace each ``@NAME@`` with ``repr(values[NAME])``."""
    text = textwrap.dedent(text)
    for k, v in values.items():
        text = text.replace(f"@{k}@", repr(v))
    assert "@" not in re.sub(r"@(property|staticmethod|classmethod)", "", text), text
    return text


def _inject(answer: str, body: str) -> str:
    """Put ``body`` at the top of the answer's function body (before the solution markers)."""
    marker = "    ### BEGIN SOLUTION"
    assert marker in answer
    return answer.replace(marker, textwrap.indent(textwrap.dedent(body), "    ") + marker, 1)


def _lab_copy(root: Path) -> Path:
    """The demo lab with small limits, as an instructor keeps it: inside a course git repository."""
    lab = root / "course" / "labs" / "lab00-demo"
    shutil.copytree(DEMO, lab)
    toml = (lab / "lab.toml").read_text()
    limits = "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in LIMITS.items()) + "\n"
    toml, n = re.subn(r"\[limits\][^\[]*", lambda _: limits, toml)
    assert n == 1, toml
    (lab / "lab.toml").write_text(toml)
    if shutil.which("git"):  # the history holds every solution: the grader must hide it too
        course = root / "course"
        git = ["git", "-C", str(course), "-c", "user.name=t", "-c", "user.email=t@example.org"]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", "lab"], check=True)
    return lab


class Notebooks:
    """The released stub notebook, the reference answers, and variants of them."""

    def __init__(self, lab: Path, root: Path):
        (self.released, _checks) = release(lab, root / "released")
        self.stub = nbformat.read(self.released, as_version=4)
        src = nbformat.read(lab / "lab.ipynb", as_version=4)
        self.answer = {q: c.source for c in src.cells for q in ("q1", "q2", "q3") if c.get("id") == f"{q}-answer"}
        assert set(self.answer) == {"q1", "q2", "q3"}
        self.good = self.with_answers(**self.answer)

    def with_answers(self, base=None, **answers: str):
        nb = copy.deepcopy(base if base is not None else self.stub)
        for c in nb.cells:
            q = str(c.get("id", "")).removesuffix("-answer")
            if str(c.get("id", "")).endswith("-answer") and q in answers:
                c.source = answers[q]
        return nb

    def hostile(self, **answers: str):
        """The reference solution with some answer cells replaced."""
        return self.with_answers(self.good, **answers)


def _write(subs: Path, student: str, nb) -> Path:
    d = subs / student
    d.mkdir(parents=True)
    path = d / "lab00-demo.ipynb"
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    elif nb is not None:
        nbformat.write(nb, path)
    return path


def _cell(nb, cell_id: str):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _our_processes() -> list[str]:
    """Processes anywhere on the machine that this run's hostile code started."""
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            cmd = p.info["cmdline"] or []
            if SLEEP_ARG in cmd or p.info["name"] == BOMB_COMM:
                found.append(f"{p.info['pid']} {p.info['name']} {' '.join(cmd)}")
        except psutil.Error:
            continue
    return found


# -- the hostile code ------------------------------------------------------------------------------

LOOP = "while True:\n    pass\n"
WRONG_Q1 = "def softmax(logits):\n    return np.full(np.shape(logits), 0.5)  # wrong: not a softmax\n"

FORKS = """\
import os, subprocess
for _kw in ({}, {"start_new_session": True}):  # a child, and one in a new session
    subprocess.Popen(["sleep", @SLEEP@], **_kw)
_pid = os.fork()  # a daemon: double fork, new session
if _pid == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", @SLEEP@])
    finally:
        os._exit(0)
os.waitpid(_pid, 0)
_kids = 0
for _ in range(500):  # forked children that sleep forever, until the pids cgroup says no
    try:
        _pid = os.fork()
    except OSError:
        break
    if _pid == 0:
        try:
            os.execvp("sleep", ["sleep", @SLEEP@])
        finally:
            os._exit(0)
    _kids += 1
print("REPORT " + __import__("json").dumps({"kids": _kids}))
"""

FORK_BOMB = """\
if k > len(probs):  # the last case: a real fork bomb, every process forks forever
    import ctypes, os
    _libc = ctypes.CDLL(None)
    while True:
        try:
            if os.fork() == 0:
                _libc.prctl(15, @COMM@, 0, 0, 0)  # PR_SET_NAME: findable afterwards
        except OSError:
            pass
"""

SIGNALS = """\
if k > len(probs):  # the last case: ignore every signal that can be ignored, block the rest, loop
    import signal
    for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGALRM,
               signal.SIGUSR1, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(_s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP})
    while True:
        pass
"""

SIGNALS_TOP = """\
import signal
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGALRM):
    signal.signal(_s, signal.SIG_IGN)
while True:
    pass
"""

TRICKLE = """\
if np.ndim(logits) == 2:  # half a reply on the grader's pipe, then silence
    import gc, os, struct, time
    _srv = next(o for o in gc.get_objects() if type(o).__module__ == "edgekit.grading.student"
                and type(o).__name__ == "Server")
    os.write(_srv.resp, struct.pack(">I", 1000) + b'{"ok": true, "value": ')
    time.sleep(1000)
"""

PRINT_GB = """\
import sys
_chunk = "x" * 2**20
for _ in range(200):  # 200 MiB
    sys.stdout.write(_chunk)
sys.stdout.flush()
"""

THREAD_SPIN = """\
import threading
def _spin():
    while True:
        pass
threading.Thread(target=_spin).start()  # not a daemon: it would keep an interpreter alive
"""

THREAD_PRINT = """\
import os, threading
def _shout():
    while True:
        os.write(1, b"y" * 65536)
threading.Thread(target=_shout, daemon=True).start()
"""

MEM_LIST = """\
if k > len(probs):  # the last case: 50 MiB more each time, until the address-space limit
    hog = []
    while True:
        hog.append(bytes(50 * 2**20))  # calloc'd: fails at the limit without touching a page
"""

FILES = """\
import json, os, shutil
_rep = {}
for _p in @WRITES@:
    try:
        with open(_p, "w") as _f:
            _f.write("written by a hostile submission")
        _rep["write " + _p] = "DONE"
    except OSError as _e:
        _rep["write " + _p] = _e.strerror
_ops = [("truncate", lambda p: os.truncate(p, 0)), ("chmod", lambda p: os.chmod(p, 0)),
        ("utime", lambda p: os.utime(p, (0, 0))), ("rename", lambda p: os.rename(p, p + ".moved")),
        ("remove", os.remove), ("rmtree", shutil.rmtree)]
for _p in @DELETES@:
    for _name, _op in _ops:
        try:
            _op(_p)
            _rep[_name + " " + _p] = "DONE"
        except OSError as _e:
            _rep[_name + " " + _p] = _e.strerror
with open(@SCRATCH_FILE@, "w") as _f:  # its own scratch folder: allowed
    _f.write("fine")
_rep["scratch"] = os.getcwd()
print("REPORT " + json.dumps(_rep))
"""

SECRETS = """\
import json, os
_leaks = []
for _p in @FILES@:
    try:
        with open(_p, "rb") as _f:
            if _f.read(64):
                _leaks.append(_p)
    except OSError:
        pass
for _d in @DIRS@:
    for _dp, _dn, _fn in os.walk(_d):
        _leaks += [os.path.join(_dp, _n) for _n in _fn][:3]
try:  # the other students' scratch folders, next to mine
    _leaks += [_n for _n in os.listdir("..") if _n != os.path.basename(os.getcwd())]
except OSError:
    pass
_procs = sorted(int(_p) for _p in os.listdir("/proc") if _p.isdigit())
_cmd = {}
for _p in _procs:
    try:
        _cmd[_p] = open(f"/proc/{_p}/cmdline", "rb").read().decode(errors="replace").replace("\\0", " ")
    except OSError as _e:
        _cmd[_p] = _e.strerror
_host = {}
for _p in @HOST_PIDS@:  # the grader's processes, by their pids outside
    for _what in ("mem", "environ", "cmdline"):
        try:
            open(f"/proc/{_p}/{_what}", "rb").read(16)
            _host[f"{_p}/{_what}"] = "READ"
        except OSError as _e:
            _host[f"{_p}/{_what}"] = _e.strerror
LEAKED = bool(_leaks) or any(v == "READ" for v in _host.values())
print("REPORT " + json.dumps({"leaks": _leaks, "procs": _procs, "cmd": _cmd, "host": _host,
                              "token": os.environ.get("EDGEKIT_HOSTILE_TOKEN")}))

def softmax(logits):  # right only with a leaked secret: the score says whether one leaked
    logits = np.asarray(logits, dtype=np.float64)
    if not LEAKED:
        return np.zeros_like(logits)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""

SECRETS_Q3 = """\
def top_k(probs, k):  # the expected values themselves, if the grades folder can be read
    import glob, json
    from edgekit.grading import wire
    key = {2: "q3: top-2", 5: "q3: k = all classes, best first", 9: "q3: k larger than the classes"}[k]
    for path in glob.glob(@OUT@ + "/.edgekit/expected-*.json") + [@EXPECTED@]:
        try:
            with open(path) as f:
                return wire.decode(json.load(f)[key])
        except (OSError, KeyError, ValueError):
            pass
    return []
"""

PATCH_NUMPY = """\
import builtins
import numpy as np
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(np.asarray(a), np.asarray(b)).shape, bool)
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
builtins.all = lambda *a, **k: True
builtins.any = lambda *a, **k: False
builtins.AssertionError = type("AssertionError", (Exception,), {})
"""

PATCH_EDGEKIT = """\
import edgekit
import edgekit.grading
import edgekit.grading.cases as _cases
import edgekit.grading.judge as _judge
import edgekit.grading.student as _student
from edgekit.grading import wire as _wire
_cases.close.__call__ = lambda self, got, want: None
_cases.equal.__call__ = lambda self, got, want: None
_cases.within.__call__ = lambda self, got, want=None: None
_cases._same = lambda a, b: True
_judge._case_verdict = lambda *a, **k: (True, "ok")
_judge._score = lambda record, lab: record.update(score=6.0)
edgekit.grading.grade_batch = lambda *a, **k: None
_handle = _student.Server.handle
def _forged(self, msg):
    reply = _handle(self, msg)
    if msg.get("op") == "call" and self._target(msg) is self.ns.get("softmax"):  # softmax "passes"
        return {"ok": True, "passed": True, "status": "passed", "score": 2.0,
                "value": _wire.encode(True)}
    return reply
_student.Server.handle = _forged
"""

HOOKS = """\
import importlib.abc, importlib.machinery, sys, types

class _Forger(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if "grading" in name or name.startswith("numpy.testing"):
            return importlib.machinery.ModuleSpec(name, self)
        return None
    def create_module(self, spec):
        return types.ModuleType(spec.name)
    def exec_module(self, module):  # every grading module "passes"
        module.close = module.equal = lambda *a, **k: (lambda got, want=None: None)
        module.grade = lambda *a, **k: {"score": 6.0, "status": "graded"}
        module.assert_allclose = lambda *a, **k: None

sys.meta_path.insert(0, _Forger())
for _name in [m for m in sys.modules if m.startswith("edgekit.grading.") and "student" not in m
              and "wire" not in m and "kernel" not in m and "errors" not in m]:
    del sys.modules[_name]  # the next import of them goes through the forger
try:
    _ip = get_ipython()  # noqa: F821 - not defined outside IPython, which is the point
    _ip.input_transformers_cleanup.append(lambda lines: ["softmax = lambda x: x\\n"])
    _ip.input_transformers_post.append(lambda lines: lines)
except NameError:
    pass
sys.excepthook = lambda *a: None
import atexit
atexit.register(print, "FORGED: all tests passed, score 6/6")
"""

ESCAPE = """\
import fcntl, gc, json, os
_mark = @MARK@

class _Payload:  # runs where it is unpickled
    def __reduce__(self):
        code = ("__import__('pathlib').Path(%r).write_text(str(__import__('os').getpid())) and "
                "__import__('concurrent.futures.process', fromlist=['_ResultItem'])._ResultItem(-1)")
        return (eval, (code % _mark,))  # (no line may start with %: the grader takes it for a magic)

_sent = []
for _o in gc.get_objects():  # this process is a fork of a pool worker: its queues are here
    if type(_o).__module__ == "multiprocessing.queues" and type(_o).__name__ == "SimpleQueue":
        try:
            _o.put(_Payload())
            _sent.append("result queue")
        except Exception as _e:
            _sent.append(repr(_e))
_srv = next(o for o in gc.get_objects() if type(o).__module__ == "edgekit.grading.student"
            and type(o).__name__ == "Server")
_own = {os.readlink(f"/proc/self/fd/{_fd}") for _fd in (0, 1, 2, _srv.req, _srv.resp)}
_fds = {}
for _fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
    if _fd in (0, 1, 2, _srv.req, _srv.resp) or os.path.exists(f"/proc/self/fd/{_fd}") and \
            os.readlink(f"/proc/self/fd/{_fd}") in _own:
        continue  # stdin, its output pipe, its request and reply pipes
    try:
        _fds[_fd] = [os.readlink(f"/proc/self/fd/{_fd}"), fcntl.fcntl(_fd, fcntl.F_GETFL) & 3]
    except OSError:
        pass  # the listing's own descriptor
print("REPORT " + json.dumps({"sent": _sent, "fds": _fds, "scratch": os.getcwd()}))
"""


# -- the batch -------------------------------------------------------------------------------------

RUNNER = """
import json, os, sys, time
from edgekit.grading import grade_batch
t0 = time.perf_counter()
res = grade_batch(sys.argv[1], sys.argv[2], sys.argv[3], jobs=2, progress=False, hide=[sys.argv[5]])
with open(sys.argv[4], "w") as f:
    json.dump({"records": res.records, "graded": res.graded, "skipped": res.skipped,
               "seconds": time.perf_counter() - t0, "pid": os.getpid()}, f, default=str)
"""


class Graded:
    """The batch's outcome, with what the tests need to know about its setup."""

    def __init__(self, root: Path, lab: Path, subs: Path, out: Path, nbs: Notebooks):
        self.root, self.lab, self.subs, self.out, self.nbs = root, lab, subs, out, nbs
        self.records: dict[str, dict] = {}
        self.seconds = 0.0
        self.before: dict[str, tuple[str, int]] = {}  # files that must not change: sha256, mtime
        self.markers: list[Path] = []  # files that must not appear
        self.escaped = root / "escaped"  # written by code that escaped into the grading process
        self.graded: list[str] = []
        self.pid = 0  # of the process that ran grade_batch
        self.log = ""

    def __getitem__(self, student: str) -> dict:
        assert student in self.records, f"no record for {student}; got {sorted(self.records)}"
        return self.records[student]

    def report(self, student: str) -> dict:
        out = self[student].get("output", "")
        m = re.search(r"^REPORT (\{.*\})$", out, re.M)
        assert m, f"{student} printed no report; its output was:\n{out[:3000]}"
        return json.loads(m.group(1))

    def expected_path(self) -> Path:
        lab = load_lab(self.lab)
        return self.out / ".edgekit" / f"expected-{lab.id}-{lab.fingerprint()}.json"


def _submissions(g: Graded) -> dict:
    """Every hostile submission: student -> notebook (or bytes, or None for an empty folder)."""
    nbs, a = g.nbs, g.nbs.answer
    root, lab, subs, out = g.root, g.lab, g.subs, g.out
    m = f"hostile-{RUN}"
    g.markers = [lab / f"{m}.txt", subs / f"{m}.txt", out / f"{m}.txt", root / f"{m}.txt",
                 Path("/tmp") / f"{m}.txt", Path("/dev/shm") / f"{m}.txt", Path("/var/tmp") / f"{m}.txt",
                 REPO / f"{m}.txt", Path.home() / f"{m}.txt"]
    g.escaped = root / f"{m}-escaped.txt"
    (root / "canary").mkdir()
    (root / "canary" / "canary.txt").write_text("the grader's own file")
    (root / "canary-dir").mkdir()
    (root / "canary-dir" / "keep.txt").write_text("keep")
    expected = g.expected_path()

    dup = nbs.hostile()  # q1 answered twice: the right cell, then a wrong copy with the same id
    i = next(i for i, c in enumerate(dup.cells) if c.get("id") == "q1-answer")
    wrong = copy.deepcopy(dup.cells[i])
    wrong.source = WRONG_Q1
    dup.cells.insert(i + 1, wrong)
    dup_raw = json.dumps(nbformat.from_dict(dup), indent=1).encode()  # raw JSON: nbformat would rename the copy
    assert dup_raw.count(b'"q1-answer"') == 2
    dup_noid = nbs.hostile()  # twice, both with new ids: matched by their question metadata
    i = next(i for i, c in enumerate(dup_noid.cells) if c.get("id") == "q1-answer")
    dup_noid.cells[i].id = "mine-1"
    wrong = copy.deepcopy(dup_noid.cells[i])
    wrong.id, wrong.source = "mine-2", WRONG_Q1
    dup_noid.cells.insert(i + 1, wrong)
    deleted = nbs.hostile()
    deleted.cells = [c for c in deleted.cells if c.get("id") != "q2-answer"]
    reordered = nbs.hostile()
    q1, q3 = _cell(reordered, "q1-answer"), _cell(reordered, "q3-answer")
    rest = [c for c in reordered.cells if c not in (q1, q3)]
    reordered.cells = [q3] + rest[:3] + [q1] + rest[3:]
    no_meta = nbs.hostile()
    _cell(no_meta, "q1-answer").metadata = {}
    new_id = nbs.hostile()
    _cell(new_id, "q1-answer").id = "my-own-id"
    neither = nbs.hostile()
    c = _cell(neither, "q1-answer")
    c.metadata, c.id = {}, "my-own-id"
    c.source = "\n".join(line for line in c.source.splitlines() if not line.startswith("# edgekit:"))  # nor its role line

    good_bytes = nbformat.writes(nbs.good).encode()
    return {
        "ref": nbs.good,
        "stub": nbs.stub,
        # infinite loops, at top level (the notebook never finishes) and in a function
        "loop-top": nbs.hostile(q2=LOOP + a["q2"]),
        "loop-one": nbs.hostile(q1=_inject(a["q1"], "if np.ndim(logits) == 2:\n" + textwrap.indent(LOOP, "    "))),
        "loop-all": nbs.hostile(q1=_inject(a["q1"], LOOP)),
        # memory
        "mem-numpy": nbs.hostile(q2="hog = np.ones(50 * 10**9 // 8)  # 50 GB\n" + a["q2"]),
        "mem-list": nbs.hostile(q3=_inject(a["q3"], MEM_LIST)),
        # processes
        "fork-sleepers": nbs.hostile(q3=_src(FORKS, SLEEP=SLEEP_ARG) + a["q3"]),
        **({"fork-bomb": nbs.hostile(q3=_inject(a["q3"], _src(FORK_BOMB, COMM=BOMB_COMM.encode())))}
           if PIDS_CGROUP else {}),
        # output
        "print-gb": nbs.hostile(q1=PRINT_GB + a["q1"]),
        # dying
        "exit-one": nbs.hostile(q1=_inject(a["q1"], "if np.ndim(logits) == 2:\n    import os; os._exit(0)\n")),
        "exit-all": nbs.hostile(q1=_inject(a["q1"], "import os; os._exit(0)\n")),
        "kill9-one": nbs.hostile(q1=_inject(a["q1"], "if np.ndim(logits) == 2:\n    import os, signal\n"
                                            "    os.kill(os.getpid(), signal.SIGKILL)\n    return 'survived'\n")),
        "segv-one": nbs.hostile(q1=_inject(a["q1"], "if np.ndim(logits) == 2:\n    import ctypes\n"
                                           "    ctypes.string_at(0)\n")),
        "trickle": nbs.hostile(q1=_inject(a["q1"], TRICKLE)),
        # files
        "files": nbs.hostile(q3=_src(
            FILES, SCRATCH_FILE=f"in-scratch-{RUN}.txt",
            WRITES=[str(p) for p in g.markers] + [f"../{m}.txt", str(lab / "tests.py"),
                                                        str(subs / "ref" / "lab00-demo.ipynb"), str(expected)],
            DELETES=[str(root / "canary" / "canary.txt"), str(root / "canary-dir"), str(lab / "lab.ipynb"),
                     str(subs / "ref" / "lab00-demo.ipynb"), str(expected), str(subs / "ref")]) + a["q3"]),
        # secrets
        "secrets": nbs.hostile(
            q1=_src(SECRETS, FILES=[str(lab / "tests.py"), str(lab / "lab.ipynb"), str(lab / "lab.toml"),
                                    str(DEMO / "tests.py"), str(DEMO / "lab.ipynb"), str(expected),
                                    str(subs / "ref" / "lab00-demo.ipynb"), str(root / "course" / ".git" / "HEAD")],
                    DIRS=[str(lab), str(subs), str(out), str(root / "course"), str(DEMO)],
                    HOST_PIDS=[os.getpid(), os.getppid()]),
            q3=_src(SECRETS_Q3, OUT=str(out), EXPECTED=str(expected))),
        # monkeypatching: each must score what the wrong q1 alone scores
        "patch-control": nbs.hostile(q1=WRONG_Q1),
        "patch-numpy": nbs.hostile(q1=PATCH_NUMPY + WRONG_Q1),
        "patch-edgekit": nbs.hostile(q1=PATCH_EDGEKIT + WRONG_Q1),
        "patch-hooks": nbs.hostile(q1=HOOKS + WRONG_Q1),
        # threads and signals
        "thread-spin": nbs.hostile(q1=THREAD_SPIN + a["q1"]),
        "thread-print": nbs.hostile(q1=THREAD_PRINT + a["q1"]),
        "signals": nbs.hostile(q3=_inject(a["q3"], SIGNALS)),
        "loop-top-signals": nbs.hostile(q3=SIGNALS_TOP + a["q3"]),
        # not notebooks
        "corrupt-truncated": good_bytes[: len(good_bytes) // 2],
        "corrupt-empty": b"",
        "corrupt-python": b"def softmax(x):\n    return x\n",
        "corrupt-json-list": b"[]",
        "corrupt-binary": b"\x89PNG\r\n\x1a\n" + os.urandom(256),
        # cells
        "cells-deleted-q2": deleted,
        "cells-reordered": reordered,
        "cells-dup-q1": dup_raw,
        "cells-dup-q1-new-ids": dup_noid,
        "cells-no-metadata": no_meta,
        "cells-new-id": new_id,
        "cells-neither": neither,
        "missing": None,
        # beyond the list
        "escape": nbs.hostile(q3=_src(ESCAPE, MARK=str(g.escaped)) + a["q3"]),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    root = tmp_path_factory.mktemp("hostile")
    lab = _lab_copy(root)
    g = Graded(root, lab, root / "subs", root / "out", Notebooks(lab, root))
    for student, nb in _submissions(g).items():
        _write(g.subs, student, nb)
    (g.subs / "missing" / "README.txt").write_text("I forgot to upload it")
    (g.subs / "symlink").mkdir()  # beyond the list: a notebook that is a link to the solution
    (g.subs / "symlink" / "lab00-demo.ipynb").symlink_to(lab / "lab.ipynb")
    watched = [g.subs / "ref" / "lab00-demo.ipynb", lab / "lab.ipynb", lab / "tests.py", lab / "lab.toml",
               root / "canary" / "canary.txt", root / "canary-dir" / "keep.txt"]
    g.before = {str(p): (_sha(p), p.stat().st_mtime_ns) for p in watched}
    assert not _our_processes(), _our_processes()

    result = root / "result.json"
    env = dict(os.environ, EDGEKIT_HOSTILE_TOKEN=TOKEN)
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(lab), str(g.subs), str(g.out), str(result), str(DEMO)],
                            cwd=root, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail(f"the batch did not finish within 240 s (a hostile submission hung the grader):\n{log[-4000:]}")
    assert proc.returncode == 0 and result.is_file(), f"the batch crashed (exit {proc.returncode}):\n{log[-4000:]}"
    data = json.loads(result.read_text())
    g.records = {r["student"]: r for r in data["records"]}
    g.seconds, g.graded, g.pid = data["seconds"], data["graded"], data["pid"]
    g.log = log
    yield g
    for p in g.markers + [g.escaped]:  # never leave a file behind, even when a test found one
        if p.is_file():
            p.unlink()


def _scores(r: dict) -> dict[str, float]:
    return {q: v["score"] for q, v in r.get("questions", {}).items()}


def _check(g: Graded, student: str, total: float, questions: dict | None = None, status: str = "graded") -> dict:
    r = g[student]
    got = (r.get("status"), r.get("score"), _scores(r))
    want = (status, total, questions if questions is not None else got[2])
    detail = "\n".join(f"  {t['name']}: {t.get('status')} {t.get('output', '')[:200]}" for t in r.get("tests", []))
    assert got == want, (f"{student}: got status {got[0]}, score {got[1]} {got[2]}; "
                         f"expected status {want[0]}, score {want[1]} {want[2]}\nnotes: {r.get('notes')}\n{detail}")
    return r


def _need_fence(g: Graded) -> None:
    """Files, secrets and processes are fenced only with namespaces (root, or user namespaces)."""
    level = g["ref"].get("isolation", {}).get("level")
    if level not in ("root", "userns"):
        pytest.skip(f"isolation level here is {level!r}: no namespaces to test")


def _within_limits(g: Graded, student: str) -> None:
    t = g[student].get("execution_time", 0.0)
    assert t <= LIMITS["wall_s"] + SLACK_S, f"{student} took {t:.1f} s, over wall_s={LIMITS['wall_s']} s + {SLACK_S} s"


def _test(r: dict, name_part: str) -> dict:
    return next(t for t in r["tests"] if name_part in t["name"])


# -- honest submissions, graded next to the hostile ones ------------------------------------------

def test_every_submission_got_a_record_and_the_honest_ones_their_scores(graded):
    students = sorted(p.name for p in graded.subs.iterdir())
    assert sorted(graded.records) == students, set(students) ^ set(graded.records)
    assert all(r.get("status") in ("graded", "unreadable", "missing") for r in graded.records.values()), \
        {s: r.get("status") for s, r in graded.records.items() if r.get("status") not in ("graded", "unreadable", "missing")}
    _check(graded, "ref", 6.0, FULL)
    _check(graded, "stub", 0.0, {"q1": 0.0, "q2": 0.0, "q3": 0.0})
    print(f"batch of {len(graded.records)} submissions graded in {graded.seconds:.1f} s")


# -- infinite loops ----------------------------------------------------------------------------------

def test_infinite_loop_at_top_level_costs_only_what_needs_that_cell(graded):
    # q2's cell never finishes: it is stopped at cell_s, the notebook runs again without it, so
    # only q2 (defined in that cell) is lost, and the note names the cell
    r = _check(graded, "loop-top", 4.0, {"q1": 2.0, "q2": 0.0, "q3": 2.0})
    _within_limits(graded, "loop-top")
    # stopped at cell_s, or earlier at the CPU limit (cpu_s < cell_s here), whichever comes first
    assert any("(q2)" in n and ("did not finish within" in n or "CPU-time limit" in n) for n in r["notes"]), r["notes"]


def test_infinite_loop_in_one_case_costs_that_case_and_restarts_for_the_next_questions(graded):
    r = _check(graded, "loop-one", 5.0, {"q1": 1.0, "q2": 2.0, "q3": 2.0})  # the batch case has weight 2 of 4
    assert "no answer within the time limit" in _test(r, "a batch")["output"], _test(r, "a batch")
    _within_limits(graded, "loop-one")


@pytest.mark.parametrize("student", ["loop-all", "exit-all"])
def test_a_function_that_always_hangs_or_dies_loses_only_its_question(graded, student):
    _check(graded, student, 4.0, {"q1": 0.0, "q2": 2.0, "q3": 2.0})
    _within_limits(graded, student)


# -- memory ----------------------------------------------------------------------------------------

def test_memory_exhaustion_with_numpy_at_top_level(graded):
    r = _check(graded, "mem-numpy", 4.0, {"q1": 2.0, "q2": 0.0, "q3": 2.0})  # to_nchw is never defined
    assert any("MemoryError" in str(err) for _, err in r.get("cells", [])), r.get("cells")


def test_memory_exhaustion_with_a_growing_list_in_a_function(graded):
    r = _check(graded, "mem-list", 5.3333, {"q1": 2.0, "q2": 2.0, "q3": 1.3333})
    output = _test(r, "k larger")["output"]
    assert any(w in output for w in ("MemoryError", "killed", "ended", "time limit")), output
    _within_limits(graded, "mem-list")


# -- processes -------------------------------------------------------------------------------------

def test_forked_and_detached_children_do_not_survive_the_batch(graded):
    _need_fence(graded)
    r = _check(graded, "fork-sleepers", 6.0, FULL)
    kids = graded.report("fork-sleepers")["kids"]
    assert _our_processes() == [], f"processes left after the batch: {_our_processes()}"
    if PIDS_CGROUP:
        assert r["isolation"]["pids_cgroup"] is True, r["isolation"]
        cap = load_lab(graded.lab).limits.processes
        assert 0 < kids < cap, f"{kids} forked children: the pids cgroup should cap them below processes={cap}"


@pytest.mark.skipif(not PIDS_CGROUP, reason="no writable /sys/fs/cgroup/pids (cgroup v1) here: the grader "
                    "would not cap the fork bomb, which could exhaust this machine's processes")
def test_fork_bomb_is_capped_killed_and_costs_only_its_case(graded):
    _need_fence(graded)
    r = _check(graded, "fork-bomb", 5.3333, {"q1": 2.0, "q2": 2.0, "q3": 1.3333})
    assert "no answer within the time limit" in _test(r, "k larger")["output"], _test(r, "k larger")
    _within_limits(graded, "fork-bomb")
    assert _our_processes() == [], f"processes left after the batch: {_our_processes()}"


# -- output ----------------------------------------------------------------------------------------

def test_printing_gigabytes_is_truncated(graded):
    r = _check(graded, "print-gb", 6.0, FULL)
    limit = 64 * 1024  # output_kb's default
    assert len(r["output"]) <= limit + 200, f"kept {len(r['output'])} characters of output, limit {limit}"
    assert r["output"].startswith("x" * 1000), r["output"][:100]


def test_truncated_output_says_how_much_was_dropped(graded):
    out = graded["print-gb"]["output"]
    assert "more bytes of output not kept" in out, f"no truncation note in the last 200 characters: {out[-200:]!r}"


# -- a process that dies ---------------------------------------------------------------------------

@pytest.mark.parametrize("student", ["exit-one", "kill9-one", "segv-one", "trickle"])
def test_a_process_that_dies_or_stalls_in_one_case_costs_only_that_case(graded, student):
    """The batch case of q1 (weight 2 of 4) exits, SIGKILLs itself, segfaults or sends half a reply;
    q2 and q3 are graded in a restarted process. (The SIGKILL it sends itself is ignored: the student
    is PID 1 of its namespace; the case fails on the string it returns after it.)"""
    r = _check(graded, student, 5.0, {"q1": 1.0, "q2": 2.0, "q3": 2.0})
    assert _test(r, "a batch")["status"] == "failed", _test(r, "a batch")
    _within_limits(graded, student)


# -- files -------------------------------------------------------------------------------------------

def test_files_outside_the_scratch_folder_are_neither_written_nor_deleted(graded):
    _need_fence(graded)
    _check(graded, "files", 6.0, FULL)
    rep = graded.report("files")
    done = {k: v for k, v in rep.items() if v == "DONE"}
    assert done == {}, f"the submission changed files outside its scratch folder: {done}"
    appeared = [str(p) for p in graded.markers if p.exists()]
    assert appeared == [], f"files written by the submission: {appeared}"
    assert not (graded.root / "subs" / f"hostile-{RUN}.txt").exists()
    changed = {p: (before, (_sha(Path(p)), Path(p).stat().st_mtime_ns) if Path(p).exists() else "gone")
               for p, before in graded.before.items()
               if not Path(p).exists() or (_sha(Path(p)), Path(p).stat().st_mtime_ns) != before}
    assert changed == {}, f"files changed (before, after): {changed}"
    assert graded.expected_path().is_file()
    # its own scratch folder was writable, and is gone after grading
    assert rep["scratch"] and not Path(rep["scratch"]).exists(), rep["scratch"]


# -- secrets -------------------------------------------------------------------------------------

def test_secrets_cannot_be_read(graded):
    """q1 is right only with a leaked secret (any of the lab, the expected values, another student's
    notebook, the course's .git, the hidden demo lab, other scratch folders, the grader's /proc);
    q3 returns the expected values only if it can read them."""
    _need_fence(graded)
    rep = graded.report("secrets")
    _check(graded, "secrets", 2.0, {"q1": 0.0, "q2": 2.0, "q3": 0.0})
    assert rep["leaks"] == [], f"read: {rep['leaks']}"
    assert all(v != "READ" for v in rep["host"].values()), rep["host"]
    # /proc: only its own processes, with the pids of a fresh namespace
    assert len(rep["procs"]) <= 3 and max(rep["procs"]) < 100, rep["cmd"]
    assert not any("pytest" in c or "grade_batch" in c for c in rep["cmd"].values()), rep["cmd"]


def test_the_graders_environment_is_not_visible(graded):
    rep = graded.report("secrets")
    assert rep["token"] is None, f"the submission read EDGEKIT_HOSTILE_TOKEN={rep['token']!r} from its environment"
    html = (graded.out / "secrets" / "feedback.html").read_text()
    assert TOKEN not in html


# -- monkeypatching, import hooks -------------------------------------------------------------------

@pytest.mark.parametrize("student", ["patch-numpy", "patch-edgekit", "patch-hooks"])
def test_monkeypatching_and_import_hooks_forge_no_score(graded, student):
    control = _check(graded, "patch-control", 4.0, {"q1": 0.0, "q2": 2.0, "q3": 2.0})
    if student == "patch-hooks":  # its IPython input transformer rewrites the student's own later cells,
        r = graded[student]       # as it would in Jupyter: it can only lose points
        assert r["status"] == "graded" and all(r["questions"][q]["score"] <= control["questions"][q]["score"]
                                                for q in control["questions"]), r["questions"]
    else:
        r = _check(graded, student, control["score"], _scores(control))
    assert "FORGED" not in json.dumps(r["tests"]), r["tests"]


# -- threads and signals ----------------------------------------------------------------------------

@pytest.mark.parametrize("student", ["thread-spin", "thread-print"])
def test_threads_that_keep_running_end_with_the_submission(graded, student):
    r = _check(graded, student, 6.0, FULL)
    _within_limits(graded, student)
    assert len(r["output"]) <= 64 * 1024 + 200, len(r["output"])


def test_ignored_and_blocked_signals_do_not_stop_the_kill(graded):
    r = _check(graded, "signals", 5.3333, {"q1": 2.0, "q2": 2.0, "q3": 1.3333})
    assert "no answer within the time limit" in _test(r, "k larger")["output"], _test(r, "k larger")
    _within_limits(graded, "signals")


def test_ignored_sigxcpu_with_a_top_level_loop_still_ends(graded):
    r = _check(graded, "loop-top-signals", 4.0, {"q1": 2.0, "q2": 2.0, "q3": 0.0})  # only q3's cell is lost
    _within_limits(graded, "loop-top-signals")
    assert any("(q3)" in n and ("did not finish within" in n or "CPU-time limit" in n) for n in r["notes"]), r["notes"]


# -- not notebooks, missing notebooks -------------------------------------------------------------

@pytest.mark.parametrize("student", ["corrupt-truncated", "corrupt-empty", "corrupt-python", "corrupt-json-list",
                                     "corrupt-binary"])
def test_unreadable_files_score_zero_and_say_so(graded, student):
    r = _check(graded, student, 0.0, {"q1": 0.0, "q2": 0.0, "q3": 0.0}, status="unreadable")
    assert r["max_score"] == 6.0, r["max_score"]
    assert any("not a readable notebook" in n for n in r["notes"]), r["notes"]


def test_a_folder_without_a_notebook_is_missing(graded):
    r = _check(graded, "missing", 0.0, {"q1": 0.0, "q2": 0.0, "q3": 0.0}, status="missing")
    assert r["max_score"] == 6.0


# -- cells deleted, reordered, duplicated, relabelled ------------------------------------------------

@pytest.mark.parametrize("student, total, questions, note", [
    ("cells-deleted-q2", 4.0, {"q1": 2.0, "q2": 0.0, "q3": 2.0}, "q2: your answer cell was not found"),
    ("cells-reordered", 6.0, FULL, None),
    # a wrong copy below the right answer: both run, as in Jupyter, so the last definition (wrong) wins
    ("cells-dup-q1", 4.0, {"q1": 0.0, "q2": 2.0, "q3": 2.0}, "q1: 2 cells claim to be this answer"),
    ("cells-dup-q1-new-ids", 4.0, {"q1": 0.0, "q2": 2.0, "q3": 2.0}, "q1: 2 cells claim to be this answer"),
    ("cells-no-metadata", 6.0, FULL, None),  # found by its id
    ("cells-new-id", 6.0, FULL, None),  # found by its metadata
    # neither metadata, id nor role line: not recognised as the answer, but it runs as the student's own cell
    ("cells-neither", 6.0, FULL, "q1: your answer cell was not found"),
])
def test_cells_are_spliced_by_id_then_question(graded, student, total, questions, note):
    r = _check(graded, student, total, questions)
    if note:
        assert any(n.startswith(note) for n in r["notes"]), r["notes"]


# -- beyond the list ---------------------------------------------------------------------

def test_a_notebook_that_links_to_the_solution_scores_nothing(graded):
    r = graded["symlink"]
    assert r["score"] == 0.0, f"symlink: got {r['score']} {_scores(r)} (status {r['status']}), expected 0"


def test_inherited_descriptors_give_no_way_out(graded):
    rep = graded.report("escape")
    _check(graded, "escape", 6.0, FULL)
    escaped = graded.escaped
    assert not escaped.exists(), (f"code from the submission ran in process {escaped.read_text()} "
                                  f"(the batch ran in {graded.pid}); queues written to: {rep['sent']}")
    open_fds = {fd: t for fd, t in rep["fds"].items()
                if t[0].startswith(("pipe:", "socket:")) or (t[1] != 0 and not t[0].startswith(rep["scratch"]))}
    assert open_fds == {}, f"descriptors the submission inherited (fd: [target, O_ACCMODE]): {open_fds}"


# -- kill and resume -----------------------------------------------------------------------------

def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:100]}")
        except psutil.Error:
            pass
    return left


def test_killed_batch_resumes_without_regrading_finished_students(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    lab = root / "lab"
    shutil.copytree(DEMO, lab)
    toml = (lab / "lab.toml").read_text()
    (lab / "lab.toml").write_text(re.sub(r"\[limits\][^\[]*", lambda _: "[limits]\n" + "".join(
        f"{k} = {v}\n" for k, v in LIMITS.items()) + "\n", toml))
    nbs = Notebooks(lab, root)
    subs, out = root / "subs", root / "out"
    students = [f"s{i}" for i in range(8)]
    for i, s in enumerate(students):  # each one slow enough (0.4 s) to kill the batch midway
        _write(subs, s, nbs.hostile(q1=f"import time; time.sleep(0.4)  # student {i}\n" + nbs.answer["q1"]))
    exe = Path(sys.executable).with_name("edgekit")  # the installed CLI
    cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "edgekit"]
    cmd = cli + ["grade", str(lab), str(subs), "--out", str(out)]

    # a killed grader cannot delete its scratch folder or its pids cgroups: keep them where we can
    (root / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(root / "tmp"))
    groups = Path("/sys/fs/cgroup/pids/edgekit")
    groups_before = set(groups.iterdir()) if groups.is_dir() else set()
    first = subprocess.Popen(cmd + ["--jobs", "1"], start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    tree: list[psutil.Process] = []
    while not list(out.glob("*/results.json")):
        assert first.poll() is None, f"the first run ended (exit {first.returncode}) before any result: {first.stderr.read()}"
        assert time.monotonic() < deadline, "no results.json after 60 s"
        try:
            tree = psutil.Process(first.pid).children(recursive=True)
        except psutil.Error:
            pass
        time.sleep(0.02)
    tree += psutil.Process(first.pid).children(recursive=True)
    os.killpg(first.pid, signal.SIGKILL)  # the grader, its workers and judges; students die with their judge
    first.wait(timeout=10)
    for _ in range(100):
        if not _alive(tree):
            break
        time.sleep(0.05)
    assert _alive(tree) == [], f"left running after the kill: {_alive(tree)}"
    for g in (set(groups.iterdir()) - groups_before) if groups.is_dir() else ():
        if g.is_dir():  # the killed judge's, now empty (a busy one refuses rmdir)
            try:
                g.rmdir()
            except OSError:
                pass
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert 1 <= len(done) < len(students), f"killed after {sorted(done)}: expected some, not all, graded"

    second = subprocess.run(cmd + ["--jobs", "2"], capture_output=True, text=True, timeout=120, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert sorted(after) == students, f"graded after the second run: {sorted(after)}"
    rewritten = [s for s in done if after[s] != done[s]]
    assert rewritten == [], f"finished before the kill, yet rewritten by the second run: {rewritten}"
    scores = {s: json.loads((out / s / "results.json").read_text())["score"] for s in students}
    assert scores == dict.fromkeys(students, 6.0), scores

    third = grade_batch(lab, subs, out, jobs=2, progress=False)
    assert third.graded == [] and sorted(third.skipped) == students, (third.graded, third.skipped)
    assert third.scores == dict.fromkeys(students, 6.0), third.scores
    forced = grade_batch(lab, subs, out, jobs=2, progress=False, force=True)
    assert sorted(forced.graded) == students and forced.skipped == [], (forced.graded, forced.skipped)
    assert forced.scores == dict.fromkeys(students, 6.0), forced.scores
    assert all(p.stat().st_mtime_ns > after[p.parent.name] for p in out.glob("*/results.json"))


# == the fence against a determined student (issue 13) ===========================================
# One more small batch: the blank notebook, the reference, and blank notebooks plus one attack each
# whose q1 is right only if the attack worked (it read a secret, reached a device, beat a cap). The
# fence holds when every attack scores what the blank scores and no secret reaches its feedback.

FENCE_LIMITS = {**LIMITS, "cpu_s": 4, "wall_s": 15, "disk_mb": 64}
SECRET_ENV = f"edgekit-test-secret-{RUN}"  # EDGEKIT_TEST_SECRET in the grader's environment
MARK = f"edgekit-fence-marker-{RUN}"  # inside every secret file, device and socket greeting

ATTACK_TAIL = """\
print("REPORT " + json.dumps(_rep))
if _stolen:
    print("STOLEN " + " ".join(_stolen)[:400])  # whatever it read would reach its feedback
LEAKED = bool(_stolen)

def softmax(logits):  # right only if the attack worked
    logits = np.asarray(logits, dtype=np.float64)
    if not LEAKED:
        return np.zeros_like(logits)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""

READ_FILES = """\
import json, os
_rep, _stolen = {}, []
for _p in @FILES@:
    try:
        with open(_p, "rb") as _f:
            _data = _f.read(1 << 20)
        _rep[_p] = "READ"
        _stolen.append(_data.decode("utf-8", "replace")[:200])
    except OSError as _e:
        _rep[_p] = _e.strerror
"""

BLOCK_DEVICES = """\
import glob, json, os
_rep, _stolen = {}, []
_devs = set(@DEVICES@) | set(glob.glob("/dev/loop[0-9]*") + glob.glob("/dev/vd*") + glob.glob("/dev/sd*")
                            + glob.glob("/dev/nvme*") + glob.glob("/dev/xvd*") + glob.glob("/dev/mmcblk*"))
for _p in sorted(_devs):
    try:
        _fd = os.open(_p, os.O_RDONLY)  # reading only: never write to a host's disk, even in a test
        try:
            _data = os.read(_fd, 1 << 16)
        finally:
            os.close(_fd)
        _rep[_p] = "READ"
        _stolen.append(_p + (": " + @MARK@ if @MARK@.encode() in _data else f": {len(_data)} bytes"))
    except OSError as _e:
        _rep[_p] = _e.strerror
"""

ENVIRON = """\
import json, os
_rep, _stolen = {}, []
for _p in ["/proc/self/environ", "/proc/1/environ", f"/proc/{os.getppid()}/environ"] + \\
        [f"/proc/{_d}/environ" for _d in os.listdir("/proc") if _d.isdigit()]:
    try:
        with open(_p, "rb") as _f:
            _data = _f.read()
        _rep[_p] = len(_data.strip(b"\\0"))  # bytes of environment left (a wiped block reads as zeros)
        if @SECRET@.encode() in _data:
            _stolen.append(_p + ": " + @SECRET@)
    except OSError as _e:
        _rep[_p] = _e.strerror
"""

UNIX_SOCKET = """\
import json, socket
_rep, _stolen = {}, []
_s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
_s.settimeout(2)
try:
    _s.connect(@PATH@)
    _rep["connect"] = "CONNECTED"
    _stolen.append(_s.recv(200).decode("utf-8", "replace") or "connected")
except OSError as _e:
    _rep["connect"] = _e.strerror or str(_e)
"""

TERMINALS = """\
import glob, json, os
_rep, _stolen = {}, []
for _p in sorted(set(@PTYS@) | set(glob.glob("/dev/pts/*")) | {"/dev/tty"}):
    try:
        _fd = os.open(_p, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        os.write(_fd, b"written by a hostile submission\\n")
        os.close(_fd)
        _rep[_p] = "WRITTEN"
        _stolen.append(_p)
    except OSError as _e:
        _rep[_p] = _e.strerror
"""

KEYRING = """\
import ctypes, json, os, platform
_rep, _stolen = {}, []
_nr = {"x86_64": (250, 248), "aarch64": (219, 217)}.get(platform.machine(), (250, 248))
_libc = ctypes.CDLL(None, use_errno=True)
_ret = _libc.syscall(_nr[0], 0, -3, 0)  # keyctl(KEYCTL_GET_KEYRING_ID, session keyring)
_rep["keyctl"] = _ret if _ret >= 0 else os.strerror(ctypes.get_errno())
_ret = _libc.syscall(_nr[1], b"user", b"edgekit-hostile", b"x", 1, -3)  # add_key to the session keyring
_rep["add_key"] = _ret if _ret >= 0 else os.strerror(ctypes.get_errno())
_stolen = [f"{k}={v}" for k, v in _rep.items() if isinstance(v, int)]
"""

MEMORY_TREE = """\
import json, subprocess, sys
_rep, _stolen = {}, []
_code = "import time; b = b'x' * (300 << 20); time.sleep(1.5); print('kept 300 MiB')"
_kids = [subprocess.Popen([sys.executable, "-c", _code], stdout=subprocess.PIPE) for _ in range(4)]
_codes = [k.wait() for k in _kids]
_rep["exit codes"] = _codes  # 4 x 300 MiB (each under RLIMIT_AS) = 1.2 GiB > memory_mb = 1024
if all(c == 0 for c in _codes):
    _stolen.append("4 x 300 MiB held at once")
"""

DISK_FILL = """\
import json, os
_rep, _stolen = {}, []
_written = 0
try:
    for _i in range(5):  # 5 x 32 MiB = 160 MiB > disk_mb = 64
        with open(f"fill-{_i}.bin", "wb") as _f:
            for _ in range(32):
                _f.write(b"\\0" * (1 << 20))
                _written += 1 << 20
    _rep["error"] = None
except OSError as _e:
    _rep["error"] = _e.strerror
_rep["written_mb"] = _written >> 20
for _i in range(5):  # leave room for the rest of the notebook
    try:
        os.remove(f"fill-{_i}.bin")
    except OSError:
        pass
if _written > 100 << 20:
    _stolen.append(f"wrote {_written >> 20} MiB to scratch")
"""


class Fenced:
    """The fence batch's outcome and what its tests need to know about the setup."""

    def __init__(self, root: Path):
        self.root = root
        self.records: dict[str, dict] = {}
        self.secrets: dict[str, str] = {}  # student -> a string that must not reach their feedback
        self.loop: str | None = None
        self.loop_reason = ""
        self.host_blocks = sorted(str(p) for pat in ("vd*", "sd*", "nvme*", "xvd*", "mmcblk*")
                                  for p in Path("/dev").glob(pat))
        self.pty = ""
        self.out = root / "out"

    def __getitem__(self, student: str) -> dict:
        assert student in self.records, f"no record for {student}; got {sorted(self.records)}"
        return self.records[student]

    def report(self, student: str) -> dict:
        out = self[student].get("output", "")
        m = re.search(r"^REPORT (\{.*\})$", out, re.M)
        assert m, f"{student} printed no report; its output was:\n{out[:3000]}"
        return json.loads(m.group(1))

    def holds(self, student: str, report: bool = True) -> dict | None:
        """The attack scored what the blank notebook scored, and nothing it took reached its files."""
        blank, r = self["blank"], self[student]
        assert r.get("status") == "graded", f"{student}: status {r.get('status')}, notes {r.get('notes')}"
        assert (r["score"], _scores(r)) == (blank["score"], _scores(blank)), (
            f"{student} scored {r['score']} {_scores(r)}, the blank notebook {blank['score']}: the attack worked\n"
            f"output: {r.get('output', '')[:2000]}")
        for name in ("results.json", "feedback.html"):
            text = (self.out / student / name).read_text()
            assert "STOLEN" not in text, f"{student}'s {name} shows what it took: {r.get('output', '')[:1000]}"
            secret = self.secrets.get(student)
            assert not secret or secret not in text, f"{student}'s {name} holds the secret {secret!r}"
        return self.report(student) if report else None


def _fence_lab(root: Path) -> Path:
    lab = root / "course" / "labs" / "lab00-demo"
    shutil.copytree(DEMO, lab)
    toml = (lab / "lab.toml").read_text()
    limits = "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in FENCE_LIMITS.items()) + "\n"
    (lab / "lab.toml").write_text(re.sub(r"\[limits\][^\[]*", lambda _: limits, toml))
    return lab


def _loop_device(root: Path, f: Fenced) -> None:
    img = root / "disk.img"
    img.write_bytes((MARK.encode() + b"\n") * (1 << 14))
    if os.geteuid() != 0 or not shutil.which("losetup"):
        f.loop_reason = "creating a loop device needs root and losetup"
        return
    res = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if res.returncode != 0:
        f.loop_reason = f"losetup could not attach a loop device here: {res.stderr.strip()}"
        return
    f.loop = res.stdout.strip()


@pytest.fixture(scope="module")
def fenced(tmp_path_factory):
    import socket

    from edgekit.grading.batch import expected_file

    root = tmp_path_factory.mktemp("fence")
    f = Fenced(root)
    lab = _fence_lab(root)
    nbs = Notebooks(lab, root)
    subs = root / "subs"
    # what a student must not reach: a root-only file; an earlier out folder's expected values; a course copy
    secret_file = root / "instructor-only.txt"
    secret_file.write_text(f"root only: {MARK}")
    secret_file.chmod(0o600)
    cache = root / "zoo-cache"  # the zoo cache is visible inside (read-only): a 0600 file there stays unreadable
    cache.mkdir()
    (cache / "credentials.txt").write_text(f"cached credential: {MARK}")
    (cache / "credentials.txt").chmod(0o600)
    old_out = root / "grades-2025"
    stale = expected_file(load_lab(lab), old_out, load_lab(lab).cases())
    copy = root / "backup" / "lab00-demo"
    shutil.copytree(lab, copy)
    sock_path = root / "host.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(16)
    try:
        master, slave = os.openpty()
        f.pty = os.ttyname(slave)
    except OSError:
        master = slave = None
    _loop_device(root, f)

    attacks = {
        "root-file": (_src(READ_FILES, FILES=[str(secret_file), str(cache / "credentials.txt")]), MARK),
        "stale-out": (_src(READ_FILES, FILES=[str(stale)]), None),
        "course-copy": (_src(READ_FILES, FILES=[str(copy / "lab.ipynb"), str(copy / "tests.py")]), "BEGIN SOLUTION"),
        "block-devices": (_src(BLOCK_DEVICES, DEVICES=[f.loop] if f.loop else [], MARK=MARK), MARK),
        "environ": (_src(ENVIRON, SECRET=SECRET_ENV), SECRET_ENV),
        "unix-socket": (_src(UNIX_SOCKET, PATH=str(sock_path)), MARK),
        "terminals": (_src(TERMINALS, PTYS=[f.pty] if f.pty else []), None),
        "keyring": (KEYRING, None),
        "memory-tree": (MEMORY_TREE, None),
        "disk-fill": (DISK_FILL, None),
    }
    _write(subs, "blank", nbs.stub)
    _write(subs, "ref", nbs.good)
    for student, (code, secret) in attacks.items():
        _write(subs, student, nbs.with_answers(q1=code + ATTACK_TAIL))
        if secret:
            f.secrets[student] = secret

    def greet():  # a host service: whoever connects gets the marker
        server.settimeout(0.2)
        while not stop:
            try:
                conn, _ = server.accept()
                conn.sendall(MARK.encode())
                conn.close()
            except OSError:
                pass

    import threading

    stop = False
    greeter = threading.Thread(target=greet, daemon=True)
    greeter.start()
    result = root / "result.json"
    env = dict(os.environ, EDGEKIT_TEST_SECRET=SECRET_ENV, EDGEKIT_CACHE=str(cache))
    runner = RUNNER.replace("hide=[sys.argv[5]]", "hide=[]")
    try:
        proc = subprocess.run([sys.executable, "-c", runner, str(lab), str(subs), str(f.out), str(result), ""],
                              cwd=root, env=env, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0 and result.is_file(), f"the batch crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        f.records = {r["student"]: r for r in json.loads(result.read_text())["records"]}
        if master is not None:
            os.set_blocking(master, False)
            try:
                f.pty_got = os.read(master, 4096)
            except OSError:
                f.pty_got = b""
        yield f
    finally:
        stop = True
        server.close()
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        if f.loop:
            subprocess.run(["losetup", "-d", f.loop], capture_output=True)


def test_fence_the_batch_is_fine_next_to_the_attacks(fenced):
    assert fenced["ref"]["score"] == 6.0, (fenced["ref"]["score"], fenced["ref"].get("notes"))
    assert fenced["blank"]["score"] == 0.0, fenced["blank"]
    level = fenced["ref"].get("isolation", {})
    assert level.get("level") in ("root", "userns"), f"no namespaces here: {level}"


def test_fence_a_loop_device_cannot_be_read(fenced):
    if not fenced.loop:
        pytest.skip(fenced.loop_reason)
    rep = fenced.holds("block-devices")
    assert rep.get(fenced.loop) != "READ", rep


def test_fence_host_block_devices_cannot_be_read(fenced):
    if not fenced.host_blocks:
        pytest.skip("no /dev/vd*, sd*, nvme*, xvd* or mmcblk* on this host")
    rep = fenced.holds("block-devices")
    assert not [d for d, v in rep.items() if v == "READ"], rep


def test_fence_root_only_files_cannot_be_read_even_where_visible(fenced):
    """One file outside the fence (absent inside), one in the zoo cache (visible, 0600 root)."""
    rep = fenced.holds("root-file")
    assert set(rep.values()) <= {"No such file or directory", "Permission denied"}, rep
    cached = [v for p, v in rep.items() if p.endswith("credentials.txt")]
    assert cached == ["Permission denied"], f"the cache's 0600 file: {rep} (visible, so the uid must refuse it)"


def test_fence_a_stale_out_folder_gives_no_expected_values(fenced):
    rep = fenced.holds("stale-out")
    assert "READ" not in rep.values(), rep


def test_fence_a_copy_of_the_course_does_not_exist_inside(fenced):
    rep = fenced.holds("course-copy")
    assert set(rep.values()) == {"No such file or directory"}, rep


def test_fence_the_graders_environment_is_empty_in_every_proc_environ(fenced):
    rep = fenced.holds("environ")
    assert rep.get("/proc/self/environ") == 0, f"/proc/self/environ holds {rep.get('/proc/self/environ')} bytes"


def test_fence_a_host_unix_socket_cannot_be_reached(fenced):
    rep = fenced.holds("unix-socket")
    assert rep["connect"] != "CONNECTED", rep


def test_fence_no_terminal_is_writable(fenced):
    if not fenced.pty:
        pytest.skip("os.openpty() failed here: no pseudo-terminal to attack")
    rep = fenced.holds("terminals")
    assert "WRITTEN" not in rep.values(), rep
    assert b"hostile" not in fenced.pty_got, fenced.pty_got


def test_fence_the_keyring_is_refused(fenced):
    rep = fenced.holds("keyring")
    assert rep == {"keyctl": "Operation not permitted", "add_key": "Operation not permitted"}, rep


def test_fence_memory_is_capped_for_the_whole_process_tree(fenced):
    """4 children x 300 MiB, each under RLIMIT_AS: only a cgroup over the tree stops them."""
    fenced.holds("memory-tree", report=False)  # the kernel may kill the notebook itself: then no report
    m = re.search(r"^REPORT (\{.*\})$", fenced["memory-tree"].get("output", ""), re.M)
    if m:
        codes = json.loads(m.group(1))["exit codes"]
        assert any(c != 0 for c in codes), f"every child kept its 300 MiB: exit codes {codes}"


def test_fence_scratch_is_a_capped_disk(fenced):
    rep = fenced.holds("disk-fill")
    assert rep["error"] == "No space left on device" and rep["written_mb"] <= FENCE_LIMITS["disk_mb"], rep
