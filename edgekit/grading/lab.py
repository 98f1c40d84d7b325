"""A lab: its manifest (``lab.toml``), its instructor notebook and its tests.

An edgekit lab is a folder::

    labs/lab01-first-inference/
        lab.toml      id, number, title, questions with points, limits, public support files
        lab.ipynb     the instructor notebook: solutions inside ### BEGIN/END SOLUTION markers
        tests.py      test cases (public and hidden) comparing the student's values with the reference

An nbgrader source notebook (``*.ipynb`` with ``metadata.nbgrader`` cells) is a lab too: each
autograded test cell becomes a question worth its ``points``.

>>> from pathlib import Path
>>> lab = load_lab(Path(__file__).parent / "demo")
>>> lab.id, [q.id for q in lab.questions], lab.max_score
('lab00-demo', ['q1', 'q2', 'q3'], 6.0)
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import LabError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6): the same parser, from PyPI
    import tomli as tomllib
from . import cases as _cases
from .late import LatePolicy
from .late import parse as _parse_late


@dataclass(frozen=True)
class Limits:
    """Per-submission limits: CPU seconds, wall seconds, memory, processes, scratch disk, kept output."""

    cpu_s: float = 60.0
    wall_s: float = 120.0
    call_s: float = 30.0  # one function call of the student's, when grading
    cell_s: float = 30.0  # one top-level cell (nbgrader's per-cell timeout): a slower cell is skipped, noted
    memory_mb: int = 4096  # per process (RLIMIT_AS) and for the whole process tree (a cgroup)
    output_kb: int = 64
    processes: int = 256  # processes and threads: ONNX Runtime starts a thread per core for each session
    disk_mb: int = 512  # the scratch folder: a tmpfs of this size (counted in the tree's memory too)


@dataclass
class Question:
    id: str
    title: str
    points: float
    manual: bool = False  # graded by the instructor (a rubric): not in the autograder's score
    rubric: tuple[tuple[float, str], ...] = ()  # a manual question's levels: (points, what earns them)


@dataclass
class Lab:
    id: str
    title: str
    root: Path
    notebook_path: Path
    questions: list[Question]
    number: int | None = None
    tests_path: Path | None = None
    files: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    minutes: int | None = None
    format: str = "edgekit"  # or "nbgrader"
    feedback: str = "summary"  # hidden cases in students' feedback: "summary" (name, pass/fail) or "full"
    late: LatePolicy | None = None  # [late]: deadline, per_day, max_days (edgekit.grading.late)

    @property
    def max_score(self) -> float:
        """Points the autograder gives; manual (rubric) questions are graded by the instructor."""
        return float(sum(q.points for q in self.questions if not q.manual))

    @property
    def auto_questions(self) -> list[Question]:
        return [q for q in self.questions if not q.manual]

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise LabError(f"lab {self.id} has no question {qid!r}; its questions are "
                       f"{', '.join(q.id for q in self.questions)}")

    def label(self, qid: str) -> str:
        """``"Lab 2, question 3"`` — how stubs and messages name a question."""
        n = self.questions.index(self.question(qid)) + 1
        lab = f"Lab {self.number}" if self.number is not None else f"Lab {self.id}"
        return f"{lab}, question {n}"

    def notebook(self):
        from .notebook import read_notebook

        return read_notebook(self.notebook_path)

    def sources(self) -> list[Path]:
        paths = [self.notebook_path] + ([self.root / "lab.toml"] if self.format == "edgekit" else [])
        paths += [self.tests_path] if self.tests_path else []
        return paths + [self.root / f for f in self.files]

    def fingerprint(self) -> str:
        """sha256 over everything that decides grades: a changed test regrades every submission."""
        h = hashlib.sha256()
        for p in self.sources():
            data = p.read_bytes()
            if self.late is not None and p == self.root / "lab.toml":  # grade_batch applies [late] on every run:
                meta = tomllib.loads(data.decode("utf-8"))  # a new deadline needs no regrade
                data = json.dumps({k: v for k, v in meta.items() if k != "late"}, sort_keys=True, default=str).encode()
            h.update(p.name.encode() + b"\0" + data + b"\0")
        return h.hexdigest()[:16]

    def cases(self) -> list[_cases.Case]:
        """Load the test cases (instructor code: only ever run by the grader, never by students)."""
        if self.format == "nbgrader":
            from .notebook import nbgrader_cases

            return nbgrader_cases(self)
        if self.tests_path is None or not self.tests_path.is_file():
            raise LabError(f"lab {self.id}: tests file {self.tests_path} not found")
        module = types.ModuleType(f"edgekit_lab_tests_{self.id.replace('-', '_')}")
        module.__file__ = str(self.tests_path)
        _cases._COLLECTING.append([])
        try:
            code = compile(self.tests_path.read_text(encoding="utf-8"), str(self.tests_path), "exec")
            exec(code, module.__dict__)
        finally:
            found = _cases._COLLECTING.pop()
        known = {q.id for q in self.questions}
        for c in found:
            if c.question not in known:
                raise LabError(f"{self.tests_path}: case {c.key!r} names question {c.question!r}, "
                               f"which lab.toml does not list ({', '.join(sorted(known))})")
        empty = [q.id for q in self.auto_questions if not any(c.question == q.id for c in found)]
        if empty:
            raise LabError(f"{self.tests_path}: no test cases for question(s) {', '.join(empty)}")
        return found


def load_lab(path: str | Path) -> Lab:
    """Load a lab folder (with ``lab.toml``), its ``lab.toml``, or an nbgrader source notebook."""
    path = Path(path).resolve()  # labs run their reference from a temporary working directory
    if path.suffix == ".ipynb":
        return _load_nbgrader(path)
    manifest = path / "lab.toml" if path.is_dir() else path
    if not manifest.is_file():
        raise LabError(f"{path} is not a lab: expected a folder with lab.toml (or an nbgrader .ipynb); "
                       "see labs/README.md for the format")
    root = manifest.parent
    try:
        meta = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{manifest}: not valid TOML ({exc})") from None
    missing = [k for k in ("id", "title", "questions") if k not in meta]
    if missing:
        raise LabError(f"{manifest}: missing key(s) {', '.join(missing)}")
    questions = []
    for i, q in enumerate(meta["questions"]):
        if not {"id", "points"} <= q.keys():
            raise LabError(f"{manifest}: question {i + 1} needs 'id' and 'points', got {sorted(q)}")
        questions.append(Question(str(q["id"]), str(q.get("title", q["id"])), float(q["points"]), bool(q.get("manual", False)),
                                  _rubric(manifest, q)))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise LabError(f"{manifest}: duplicate question ids in {ids}")
    known = set(Limits.__dataclass_fields__)
    bad = set(meta.get("limits", {})) - known
    if bad:
        raise LabError(f"{manifest}: unknown limit(s) {sorted(bad)}; known: {sorted(known)}")
    lab = Lab(id=str(meta["id"]), title=str(meta["title"]), root=root,
              notebook_path=root / meta.get("notebook", "lab.ipynb"), questions=questions,
              number=meta.get("number"), tests_path=root / meta.get("tests", "tests.py"),
              files=list(meta.get("files", [])), limits=Limits(**meta.get("limits", {})),
              minutes=meta.get("minutes"), feedback=str(meta.get("feedback", "summary")),
              late=_parse_late(meta.get("late"), manifest))
    if lab.feedback not in ("summary", "full"):
        raise LabError(f"{manifest}: feedback = {lab.feedback!r}; allowed: \"summary\" (hidden cases show their "
                       f"name and pass/fail, the default) or \"full\" (also their inputs and expected values)")
    for p in [lab.notebook_path] + [root / f for f in lab.files]:
        if not p.is_file():
            raise LabError(f"{manifest}: file {p} is listed but does not exist")
    return lab


def _rubric(manifest: Path, q: dict) -> tuple[tuple[float, str], ...]:
    """``rubric = [{points = 5, text = "complete"}, ...]`` of a manual question, checked."""
    levels = q.get("rubric", [])
    fix = (f"{manifest}: question {q['id']}: rubric must be a list of {{points = N, text = \"...\"}} with 0 <= N <= "
           f"{q['points']} on a manual question (manual = true)")
    if levels and (not q.get("manual") or not isinstance(levels, list)):
        raise LabError(f"{fix}; got {levels!r}")
    out = []
    for level in levels:
        if not (isinstance(level, dict) and isinstance(level.get("points"), (int, float)) and
                0 <= level["points"] <= float(q["points"]) and isinstance(level.get("text"), str)):
            raise LabError(f"{fix}; got {level!r}")
        out.append((float(level["points"]), level["text"]))
    return tuple(out)


def _load_nbgrader(path: Path) -> Lab:
    from .notebook import read_notebook, role

    nb = read_notebook(path)
    questions = []
    for cell in nb.cells:
        kind, qid = role(cell)
        nbg = cell.metadata.get("nbgrader") if isinstance(cell.metadata.get("nbgrader"), dict) else {}
        if kind == "test":
            questions.append(Question(qid, qid, float(nbg.get("points", 0))))
        elif nbg.get("task") or (nbg.get("solution") and nbg.get("grade")):  # graded by hand, in edgekit review
            questions.append(Question(str(nbg.get("grade_id")), str(nbg.get("grade_id")), float(nbg.get("points", 0)),
                                      manual=True))
    if not any(not q.manual for q in questions):
        raise LabError(f"{path}: no autograded test cells (metadata nbgrader.grade = true) found; "
                       "is this an nbgrader source notebook?")
    return Lab(id=path.stem, title=path.stem, root=path.parent, notebook_path=path, questions=questions,
               format="nbgrader", files=_support_files(path))


MAX_SUPPORT_BYTES = 64 * 2**20


def _support_files(notebook: Path) -> list[str]:
    """The files beside an nbgrader source notebook, as nbgrader copies the assignment folder.

    Notebooks are left out (other problems' sources hold their solutions), and so are hidden
    files, symlinks and anything past 64 MiB in all.
    """
    root, found, total = notebook.parent, [], 0
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if (p.is_symlink() or not p.is_file() or p.suffix == ".ipynb" or any(part.startswith(".") for part in rel.parts)
                or "__pycache__" in rel.parts):
            continue
        total += p.stat().st_size
        if total > MAX_SUPPORT_BYTES:
            break
        found.append(rel.as_posix())
    return found
