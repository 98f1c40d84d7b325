"""``edgekit review OUT``: grade the manual (rubric) questions of a graded batch in a browser.

A tornado app on 127.0.0.1 only, behind a random token in the URL, as Jupyter does
(``http://127.0.0.1:PORT/?token=...``; the first visit sets it as a cookie, a request with
neither gets 403). One page per (question, student): the student's answer cells rendered — markdown
through markdown-it with raw HTML off, code in ``<pre>``, outputs as text, PNG images as ``data:``
URIs; a student's HTML output is never rendered, its ``text/plain`` is shown instead — the rubric
from ``lab.toml`` as buttons, a comment box, progress and filters (ungraded, flagged). Templates are
jinja2 with autoescaping; the page's script is a file (the Content-Security-Policy allows no inline
script).

Saving writes the gradebook (:mod:`edgekit.grading.gradebook`: one transaction, several TAs at
once) and regenerates that student's files and ``grades.csv``. Navigation stays fast with a few
hundred students: a notebook is parsed and rendered once per modification time, and the student
list once per change of the records folder.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._extras import require
from . import gradebook as gb
from .lab import Lab, LabError, Question, load_lab
from .notebook import role
from .submissions import _lab_marks, pick_notebook

TEMPLATES = Path(__file__).parent / "templates"
FILTERS = ("all", "ungraded", "flagged")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def answer_cells(cells: list[dict], qid: str) -> list[dict]:
    """The cells holding the answer to ``qid``: its role (``# edgekit: answer qid`` or metadata),
    a cell whose id is the question's (lab11's markdown ``writeup``), or nbgrader's manually graded cells."""
    found = []
    for cell in cells:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        ek = meta.get("edgekit") if isinstance(meta.get("edgekit"), dict) else {}
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        if (cell.get("id") == qid or (ek.get("role") == "answer" and str(ek.get("question")) == qid)
                or (str(nbg.get("grade_id")) == qid and (nbg.get("solution") or nbg.get("task")))
                or (cell.get("cell_type") == "code" and role(cell, trusted=False) == ("answer", qid))):
            found.append(cell)
    return found


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def render_cell(cell: dict, markdown) -> dict:
    """``{"kind", "html" (markdown, already sanitised) or "source", "outputs": [{"text"} | {"png"}]}``."""
    source = _text(cell.get("source"))
    if cell.get("cell_type") != "code":
        for name, data in (cell.get("attachments") or {}).items():  # pasted images: data: URIs
            png = data.get("image/png") if isinstance(data, dict) else None
            if isinstance(png, str):
                source = source.replace(f"attachment:{name}", "data:image/png;base64," + re.sub(r"\s", "", png))
        return {"kind": "markdown", "html": markdown.render(source), "outputs": []}
    outputs = []
    for out in cell.get("outputs") or []:
        kind = out.get("output_type")
        if kind == "stream":
            outputs.append({"text": _text(out.get("text"))})
        elif kind == "error":
            outputs.append({"text": ANSI.sub("", "\n".join(out.get("traceback") or [])) or
                            f"{out.get('ename')}: {out.get('evalue')}"})
        else:
            data = out.get("data") or {}
            png = data.get("image/png")
            if isinstance(png, str) and re.fullmatch(r"[A-Za-z0-9+/=\s]+", png):
                outputs.append({"png": re.sub(r"\s", "", png)})
            elif "text/plain" in data:  # never the student's text/html: shown as its plain text
                outputs.append({"text": _text(data["text/plain"])})
            elif data:
                outputs.append({"text": f"(an output of type {', '.join(sorted(data))}, not shown here)"})
    return {"kind": "code", "source": source, "outputs": outputs}


@dataclass
class Review:
    """What the pages share: the batch, the gradebook and the caches."""

    out: Path
    lab: Lab
    submissions: Path | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    grader: str = ""
    _students: tuple[int, list[str]] = (-1, [])
    _picks: dict = field(default_factory=dict)     # student -> (folder mtime, notebook path)
    _answers: dict = field(default_factory=dict)   # student -> ((path, mtime, size), {qid: [cells]})
    _names: dict | None = None

    def __post_init__(self):
        self.questions = [q for q in self.lab.questions if q.manual]
        if not self.questions:
            raise LabError(f"lab {self.lab.id} has no manual question to review (manual = true in lab.toml)")
        self.con = gb.connect(self.out)
        self.cookie = "edgekit-review-" + hashlib.sha256(self.token.encode()).hexdigest()[:8]
        self._marks = _lab_marks(self.lab)
        from markdown_it import MarkdownIt  # a dependency of rich (core): always there

        self.markdown = MarkdownIt("commonmark", {"html": False}).enable("table")

    def question(self, qid: str) -> Question:
        return gb.manual_question(self.lab, qid)

    def students(self) -> list[str]:
        stamp = gb.records_dir(self.out).stat().st_mtime_ns
        if stamp != self._students[0]:
            self._students = (stamp, gb.students(self.out))
        return self._students[1]

    def name(self, student: str) -> str:
        """The student's name from ``SUBMISSIONS/roster.csv`` (written by ``edgekit collect``), if any."""
        if self._names is None:
            self._names = {}
            roster = self.submissions / "roster.csv" if self.submissions else None
            if roster and roster.is_file():
                with open(roster, newline="", encoding="utf-8") as f:
                    self._names = {r.get("id", ""): r.get("name", "") for r in csv.DictReader(f)}
        return self._names.get(student, "")

    def notebook(self, student: str) -> Path | None:
        folder = self.submissions / student if self.submissions else None
        if folder is None or not folder.is_dir():
            return None
        stamp = folder.stat().st_mtime_ns
        if self._picks.get(student, (None,))[0] != stamp:
            self._picks[student] = (stamp, pick_notebook(folder, self.lab, self._marks)[0])
        return self._picks[student][1]

    def answer(self, student: str, qid: str) -> tuple[list[dict], str]:
        """(the rendered answer cells, a line saying what was looked at or why nothing is shown)."""
        path = self.notebook(student)
        if path is None:
            where = self.submissions / student if self.submissions else None
            return [], (f"no notebook in {where}" if where else "the submissions folder is not known: run "
                        "edgekit review OUT --submissions SUBMISSIONS")
        st = path.stat()
        key = (path, st.st_mtime_ns, st.st_size)
        cached = self._answers.get(student)
        if cached is None or cached[0] != key:
            try:
                cells = json.loads(path.read_bytes()).get("cells", [])
                cells = [c for c in cells if isinstance(c, dict)]
            except (OSError, ValueError, AttributeError) as exc:
                return [], f"{path.name} is not a readable notebook ({exc})"
            cached = (key, {q.id: [render_cell(c, self.markdown) for c in answer_cells(cells, q.id)]
                            for q in self.questions})
            self._answers[student] = cached
        found = cached[1][qid]
        return found, (f"{path.name}: {len(found)} answer cell(s)" if found else
                       f"{path.name} has no answer cell for {qid} (a cell with id {qid!r} or role answer {qid})")

    def scores(self, qid: str) -> dict[str, gb.Score]:
        rows = self.con.execute("SELECT student, points, comment, grader, updated_at FROM scores WHERE question = ?",
                                (qid,))
        return {s: gb.Score(*rest) for s, *rest in rows}

    def flagged(self, qid: str) -> set[str]:
        return {s for (s,) in self.con.execute("SELECT student FROM flags WHERE question = ?", (qid,))}

    def page(self, qid: str, student: str, filt: str) -> dict:
        """Everything the page template shows for one (question, student)."""
        q = self.question(qid)
        order = self.students()
        if student not in order:
            raise LabError(f"no graded submission of student {student!r} in {self.out}")
        scores, flagged = self.scores(qid), self.flagged(qid)
        keep = {"all": lambda s: True, "ungraded": lambda s: s not in scores, "flagged": flagged.__contains__}[filt]
        i = order.index(student)
        after = next((s for s in order[i + 1:] if keep(s)), None)
        before = next((s for s in reversed(order[:i]) if keep(s)), None)
        cells, where = self.answer(student, qid)
        levels = list(q.rubric) or [(float(p), f"{p} point{'s' * (p != 1)}") for p in range(int(q.points), -1, -1)]
        by_points = len({p for p, _ in levels}) == len(levels) and all(p == int(p) and p < 10 for p, _ in levels)
        keys = [f"{p:g}" if by_points else str(k + 1) if k < 9 else "" for k, (p, _) in enumerate(levels)]
        return {"lab": self.lab, "q": q, "questions": self.questions, "student": student, "name": self.name(student),
                "index": i + 1, "total": len(order), "graded": sum(s in scores for s in order), "filter": filt,
                "filters": FILTERS, "next": after, "prev": before, "score": scores.get(student),
                "flagged": student in flagged, "n_flagged": len(flagged & set(order)), "cells": cells, "where": where,
                "levels": [{"points": p, "text": t, "key": k} for (p, t), k in zip(levels, keys)],
                "grader": self.grader}

    def save(self, student: str, qid: str, points, comment: str, grader: str) -> dict:
        gb.set_score(self.out, student, qid, points, comment, grader, lab=self.lab)
        gb.regenerate(self.out, self.lab, students=[student])
        scores = self.scores(qid)
        return {"saved": student, "graded": sum(s in scores for s in self.students()), "total": len(self.students())}


def open_review(out: str | Path, lab: str | Path | Lab | None = None, submissions: str | Path | None = None,
                grader: str = "", token: str | None = None) -> Review:
    """A :class:`Review` of ``out``; the lab and submissions default to those ``edgekit grade`` used."""
    out = Path(out).resolve()
    gb.connect(out).close()  # a grades folder, or an error that says how to make one
    info = gb.batch_info(out)
    lab = lab or info.get("lab")
    if lab is None:
        raise LabError(f"which lab is {out} of? It has no .edgekit/batch.json (graded by an older edgekit); "
                       "give it: edgekit review OUT --lab LAB")
    subs = submissions or info.get("submissions")
    review = Review(out, lab if isinstance(lab, Lab) else load_lab(lab), Path(subs).resolve() if subs else None,
                    grader=grader)
    if token:
        review.token = token
        review.cookie = "edgekit-review-" + hashlib.sha256(token.encode()).hexdigest()[:8]
    return review


def make_app(review: Review):
    """The tornado application serving ``review``."""
    web = require("tornado.web", extra="lab", purpose="edgekit review")
    jinja2 = require("jinja2", extra="lab", purpose="edgekit review")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["g"] = lambda x: f"{x:g}"
    page = env.get_template("review.html")
    script = (TEMPLATES / "review.js").read_bytes()

    class Base(web.RequestHandler):
        def prepare(self):
            given = self.get_query_argument("token", None)
            if given is not None and hmac.compare_digest(given.encode(), review.token.encode()):
                self.set_cookie(review.cookie, review.token, httponly=True, samesite="Strict")
            elif not hmac.compare_digest((self.get_cookie(review.cookie) or "").encode(), review.token.encode()):
                raise web.HTTPError(403)
            self.set_header("Content-Security-Policy", CSP)
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Referrer-Policy", "no-referrer")

        def write_error(self, status_code, **kwargs):
            exc = kwargs.get("exc_info", (None, None))[1]
            if status_code == 403:
                msg = "403: this page needs the token: open the URL (with ?token=...) that edgekit review printed"
            else:
                msg = f"{status_code}: {exc if isinstance(exc, LabError) else self._reason}"
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(msg)

    class Index(Base):
        def get(self):
            filt = self.get_query_argument("filter", "all")
            qid = self.get_query_argument("q", review.questions[0].id)
            order = review.students()
            if not order:
                raise web.HTTPError(404, reason=f"no graded submissions in {review.out}")
            scores, flagged = review.scores(qid), review.flagged(qid)
            first = next((s for s in order if filt == "all" or (filt == "ungraded" and s not in scores)
                          or (filt == "flagged" and s in flagged)), order[0])
            self.redirect(f"/q/{quote(qid, safe='')}/{quote(first, safe='')}?filter={quote(filt, safe='')}")

    class Page(Base):
        def get(self, qid, student):
            filt = self.get_query_argument("filter", "all")
            if filt not in FILTERS:
                filt = "all"
            try:
                data = review.page(qid, student, filt)
            except LabError as exc:
                raise web.HTTPError(404, reason=" ".join(str(exc).split())) from None
            self.finish(page.render(xsrf=self.xsrf_token.decode(), **data))

    class Api(Base):
        def post(self, action):
            try:
                body = json.loads(self.request.body or b"{}")
                if action == "score":
                    reply = review.save(str(body["student"]), str(body["question"]), body.get("points"),
                                        str(body.get("comment", "")), str(body.get("grader", "")))
                else:
                    gb.set_flag(review.out, str(body["student"]), str(body["question"]), bool(body.get("flagged")),
                                str(body.get("grader", "")))
                    reply = {"flagged": bool(body.get("flagged"))}
            except (LabError, KeyError, ValueError, TypeError) as exc:
                self.set_status(400)
                reply = {"error": " ".join(str(exc).split()) or type(exc).__name__}
            self.finish(reply)

    class Script(Base):
        def get(self):
            self.set_header("Content-Type", "text/javascript; charset=utf-8")
            self.finish(script)

    return web.Application([(r"/", Index), (r"/q/([^/]+)/([^/]+)", Page), (r"/api/(score|flag)", Api),
                            (r"/static/review\.js", Script)], xsrf_cookies=True)


def listen(review: Review, port: int = 0):
    """Start serving ``review`` on 127.0.0.1 in the running event loop; returns ``(server, url)``."""
    httpserver = require("tornado.httpserver", extra="lab", purpose="edgekit review")
    netutil = require("tornado.netutil", extra="lab", purpose="edgekit review")
    sockets = netutil.bind_sockets(port, address="127.0.0.1")
    server = httpserver.HTTPServer(make_app(review))
    server.add_sockets(sockets)
    return server, f"http://127.0.0.1:{sockets[0].getsockname()[1]}/?token={review.token}"


def serve(review: Review, port: int = 0, announce=print) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import asyncio

    async def main():
        server, url = listen(review, port)
        done = len(review.scores(review.questions[0].id))
        announce(f"reviewing {review.lab.id}: {len(review.students())} students, "
                 f"{', '.join(q.id for q in review.questions)} ({done} graded so far)\nopen {url}")
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()

    asyncio.run(main())
