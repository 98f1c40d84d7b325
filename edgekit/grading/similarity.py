"""Copied answers: students' answer cells compared by fingerprint, as MOSS does. It flags, never grades.

Each student's answer to a question (the code of its answer cells; nbgrader: its ``solution``
cells) becomes a sequence of tokens with Python's own :mod:`tokenize`: comments and whitespace go,
every name becomes ``N`` (renaming variables changes nothing), every number ``0`` and every
string ``""``; keywords and operators stay. A cell that does not tokenize (an unclosed bracket)
is read line by line with a plain pattern instead, so it still counts. Each run of ``k`` tokens
(a k-gram) is hashed, and winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003) keeps the
smallest hash of every ``window`` consecutive ones (the rightmost on ties): any shared run of at
least ``k + window - 1`` tokens leaves a fingerprint in both answers, and one shorter than ``k``
never does.

Fingerprints that are no evidence are dropped before scoring: every k-gram of the released stub
(the base code all students start from: signatures, docstrings, given lines) and, per
question, those found in more than ``common`` of the submissions (idioms everyone writes; never
fewer than 3 submissions, so a small class's copied pair is not taken for an idiom). An
answer left with fewer than :data:`MIN_FINGERPRINTS` fingerprints is too short to judge, and
skipped. Two answers A and B score ``|A ∩ B| / min(|A|, |B|)``: the share of the smaller
answer found in the other (1.0: one is contained in the other), as MOSS and JPlag's "max"
similarity report. Pairs are found through an index fingerprint -> students, so 200 students
cost what their shared fingerprints cost, not 20 000 comparisons.

>>> [t for t, _ in tokens("total = price * 2  # a comment\\n")]
['N', '=', 'N', '*', '0']
"""

from __future__ import annotations

import hashlib
import html
import io
import keyword
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from .._errors import LabError
from .lab import Lab
from .notebook import read_notebook, role, stub

MIN_FINGERPRINTS = 4  # fewer after base code and idioms are dropped: too little to call a copy
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
        tokenize.ENCODING, tokenize.ENDMARKER} | {getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END")
                                                   if hasattr(tokenize, n)}
STRINGS = {tokenize.STRING} | ({tokenize.FSTRING_START} if hasattr(tokenize, "FSTRING_START") else set())
LINE_TOKEN = re.compile(r"""#.*|[A-Za-z_]\w*|\d[\w.]*|"(?:\\.|[^"\\])*"?|'(?:\\.|[^'\\])*'?|\*\*|//|==|!=|<=|>=|->|\S""")


def _word(text: str) -> str:
    return text if keyword.iskeyword(text) else "N"


def tokens(source: str, first_line: int = 0) -> list[tuple[str, int]]:
    """``[(token class, 0-based line)]`` of ``source``: names ``N``, numbers ``0``, strings ``""``."""
    out = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(source).readline):
            if t.type in SKIP:
                continue
            text = (_word(t.string) if t.type == tokenize.NAME else "0" if t.type == tokenize.NUMBER
                    else '""' if t.type in STRINGS else t.string)
            out.append((text, first_line + t.start[0] - 1))
        return out
    except (tokenize.TokenError, SyntaxError):  # unclosed bracket or string, bad dedent: line by line
        out = []
        for i, line in enumerate(source.splitlines()):
            for s in LINE_TOKEN.findall(line):
                if s[0] == "#":
                    continue
                text = _word(s) if s[0].isalpha() or s[0] == "_" else "0" if s[0].isdigit() else \
                    '""' if s[0] in "'\"" else s
                out.append((text, first_line + i))
        return out


def _hash(gram: tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(gram).encode(), digest_size=8).digest(), "big")


def kgrams(toks: list[tuple[str, int]], k: int) -> list[tuple[int, int, int]]:
    """``[(hash, first line, last line)]`` of every run of ``k`` tokens (a stable hash: reports repeat)."""
    return [(_hash(tuple(t for t, _ in toks[i:i + k])), toks[i][1], toks[i + k - 1][1])
            for i in range(len(toks) - k + 1)]


def winnow(hashes: list[int], window: int) -> list[int]:
    """Positions kept: the minimum of each ``window`` consecutive hashes, the rightmost on ties."""
    if not hashes:
        return []
    kept: list[int] = []
    for start in range(max(1, len(hashes) - window + 1)):
        win = hashes[start:start + window]
        pos = start + len(win) - 1 - win[::-1].index(min(win))
        if not kept or kept[-1] != pos:
            kept.append(pos)
    return kept


@dataclass
class Answer:
    """One student's answer to one question: its lines (cells in order) and fingerprint -> line spans."""

    student: str
    question: str
    lines: list[str]
    cell_starts: list[int]
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


@dataclass
class Match:
    """Two students' answers to one question with ``shared`` fingerprints in common."""

    question: str
    a: str
    b: str
    shared: int
    sizes: tuple[int, int]

    @property
    def score(self) -> float:
        return self.shared / min(self.sizes)


@dataclass
class Similarity:
    """What :func:`compare` found: matches at or above ``threshold``, best first, and what it left out."""

    lab: str
    matches: list[Match]
    answers: dict[tuple[str, str], Answer]
    students: int
    threshold: float
    k: int
    window: int
    common: float
    skipped: list[str] = field(default_factory=list)  # answers too short to judge, notebooks not read
    visited: int = 0  # answer pairs that share any fingerprint: the only ones scored

    def lines(self, m: Match) -> tuple[set[int], set[int]]:
        """The lines of ``m.a``'s and ``m.b``'s answers covered by their shared fingerprints."""
        a, b = self.answers[m.a, m.question], self.answers[m.b, m.question]
        shared = a.spans.keys() & b.spans.keys()
        return ({i for h in shared for lo, hi in a.spans[h] for i in range(lo, hi + 1)},
                {i for h in shared for lo, hi in b.spans[h] for i in range(lo, hi + 1)})


def answer_cells(nb, *, trusted: bool) -> dict[str, list[str]]:
    """``{question: [answer cell source, ...]}`` in notebook order."""
    found: dict[str, list[str]] = defaultdict(list)
    for cell in nb.cells:
        kind, qid = role(cell, trusted=trusted)
        if kind == "answer" and qid is not None:
            found[qid].append(cell.source)
    return found


def base_hashes(lab: Lab, k: int, extra: list[Path] = ()) -> set[int]:
    """Every k-gram hash of the code students are given: the released stub's cells, and ``extra`` files."""
    sources = []
    for cell in lab.notebook().cells:
        kind, _ = role(cell)
        if cell.cell_type == "code" and kind != "instructor":
            sources.append(stub(cell.source, "base") if kind == "answer" else cell.source)
    for p in extra:
        p = Path(p)
        sources += ([c.source for c in read_notebook(p).cells if c.cell_type == "code"] if p.suffix == ".ipynb"
                    else [p.read_text(encoding="utf-8", errors="replace")])
    return {h for s in sources for h, _, _ in kgrams(tokens(s), k)}


def fingerprint(student: str, question: str, cells: list[str], k: int, window: int, base: set[int]) -> Answer:
    lines: list[str] = []
    starts, toks = [], []
    for src in cells:
        starts.append(len(lines))
        toks += tokens(src, len(lines))
        lines += src.splitlines() or [""]
    ans = Answer(student, question, lines, starts)
    grams = kgrams(toks, k)
    for pos in winnow([h for h, _, _ in grams], window):
        h, lo, hi = grams[pos]
        if h not in base:
            ans.spans.setdefault(h, []).append((lo, hi))
    return ans


def compare(lab: Lab, submissions: str | Path, *, threshold: float = 0.5, k: int = 5, window: int = 4,
            common: float = 0.1, base: list[Path] = ()) -> Similarity:
    """Compare every pair of students' answers, question by question; see the module's docstring."""
    from .judge import check_submission_file
    from .submissions import find_submissions

    root = Path(submissions)
    if (root / ".edgekit" / "records").is_dir():
        raise LabError(f"{root} is a grades folder (edgekit grade --out): its records keep each notebook's sha256, "
                       "not the notebook; pass the submissions folder that was graded, SUBMISSIONS/<student>/*.ipynb")
    if k < 1 or window < 1 or not 0 < common <= 1:
        raise LabError(f"k = {k}, window = {window}, common = {common}: expected k >= 1, window >= 1 and "
                       "0 < common <= 1 (a fraction of the submissions)")
    given = base_hashes(lab, k, list(base))
    answers: dict[tuple[str, str], Answer] = {}
    skipped, students = [], 0
    for sub in find_submissions(root, lab).values():
        if sub.notebook is None or sub.refused:
            continue
        try:
            check_submission_file(sub.notebook)
            nb = read_notebook(sub.notebook)
        except LabError as exc:
            skipped.append(f"{sub.student}: not read ({exc})")
            continue
        students += 1
        for qid, cells in answer_cells(nb, trusted=False).items():
            answers[sub.student, qid] = fingerprint(sub.student, qid, cells, k, window, given)
    by_question: dict[str, list[Answer]] = defaultdict(list)
    for ans in answers.values():
        by_question[ans.question].append(ans)
    matches, visited = [], 0
    for qid, group in sorted(by_question.items()):
        index: dict[int, list[str]] = defaultdict(list)  # fingerprint -> students whose answer has it
        for ans in group:
            for h in ans.spans:
                index[h].append(ans.student)
        most = max(3, common * len(group))
        for ans in group:  # idioms out; then answers too short to judge out
            ans.spans = {h: s for h, s in ans.spans.items() if len(index[h]) <= most}
            if len(ans.spans) < MIN_FINGERPRINTS:
                skipped.append(f"{ans.student} {qid}: {len(ans.spans)} fingerprint(s) beyond the base code "
                               f"(fewer than {MIN_FINGERPRINTS}: too short to judge)")
        sizes = {a.student: len(a.spans) for a in group if len(a.spans) >= MIN_FINGERPRINTS}
        shared: dict[tuple[str, str], int] = defaultdict(int)
        for owners in index.values():
            if 2 <= len(owners) <= most:
                for pair in combinations(sorted(s for s in owners if s in sizes), 2):
                    shared[pair] += 1
        visited += len(shared)
        for (a, b), n in shared.items():
            m = Match(qid, a, b, n, (sizes[a], sizes[b]))
            if m.score >= threshold:
                matches.append(m)
    matches.sort(key=lambda m: (-m.score, -m.shared, m.question, m.a, m.b))
    return Similarity(lab.id, matches, answers, students, threshold, k, window, common, skipped, visited)


def report_html(sim: Similarity) -> str:
    """A static page: every match side by side, the lines with shared fingerprints marked; all text escaped."""
    e = html.escape
    rows, blocks = [], []
    for n, m in enumerate(sim.matches, 1):
        rows.append(f"<tr><td><a href='#m{n}'>{n}</a></td><td>{e(m.a)}</td><td>{e(m.b)}</td><td>{e(m.question)}</td>"
                    f"<td>{m.score:.0%}</td><td>{m.shared} of {min(m.sizes)}</td></tr>")
        marked = sim.lines(m)
        sides = []
        for who, mark in zip((m.a, m.b), marked):
            ans = sim.answers[who, m.question]
            code = "".join(("<hr>" if i in ans.cell_starts and i else "")
                           + (f"<mark>{e(line)}</mark>" if i in mark else e(line)) + "\n"
                           for i, line in enumerate(ans.lines))
            sides.append(f"<td><h3>{e(who)}</h3><pre>{code}</pre></td>")
        blocks.append(f"<h2 id='m{n}'>{n}. {e(m.a)} and {e(m.b)}, question {e(m.question)}: {m.score:.0%}</h2>"
                      f"<table class='side'><tr>{''.join(sides)}</tr></table>")
    skipped = "".join(f"<li>{e(s)}</li>" for s in sim.skipped)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Similar answers: {e(sim.lab)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}td{{vertical-align:top;padding:2px 8px}}
table.side{{width:100%;table-layout:fixed}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:4px}}
mark{{background:#ffd54f}}hr{{border:0;border-top:1px dashed #999}}.note{{background:#eef;padding:8px}}</style></head>
<body><h1>Similar answers: {e(sim.lab)}</h1>
<p class="note">This report flags pairs of answers for a person to read; it changes no grade. A high score means
shared code beyond the released stub, not proof of copying: the same hint, a shared textbook or a short
answer with one natural form can also score high.</p>
<p>{sim.students} notebooks; {len(sim.matches)} answer pair(s) at or above {sim.threshold:.0%}. Score =
shared fingerprints / fingerprints of the smaller answer (k = {sim.k} tokens, window = {sim.window}: every shared
run of {sim.k + sim.window - 1}+ tokens counts, names, numbers and strings made alike, comments ignored); the
released stub's code and fingerprints in more than {sim.common:.0%} of the submissions are ignored.</p>
<table><tr><th>#</th><th>student</th><th>student</th><th>question</th><th>score</th><th>shared</th></tr>
{''.join(rows)}</table>{''.join(blocks)}
{f'<h2>Not compared</h2><ul>{skipped}</ul>' if skipped else ''}</body></html>
"""
