"""`edgekit review`: the rubric grading page over HTTP (a live tornado server on a free loopback port,
driven with urllib): the token, escaping of what students wrote, saving into the gradebook and files.

The grades folder is made cheaply: records written through results.write_student (a real grading
run is tests/test_grading_gradebook.py's), notebooks from the released lab11 one.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from edgekit.cli.main import main
from edgekit.grading import load_lab
from edgekit.grading.results import write_student
from edgekit.grading.review import listen, open_review

pytest.importorskip("tornado")
pytest.importorskip("jinja2")

ROOT = Path(__file__).parents[1]
LAB = ROOT / "labs" / "lab11-capstone"
RELEASED = ROOT / "notebooks" / "lab11-capstone" / "lab11-capstone.ipynb"
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                     "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
SCRIPT_OUT = {"output_type": "display_data", "metadata": {},
              "data": {"text/html": "<script>alert('out')</script>", "text/plain": "<Report: plain view>"}}


def make_out(root: Path, students: dict[str, str], auto: float = 3.0) -> tuple[Path, Path]:
    """(SUBMISSIONS, OUT): each student's notebook with ``students[name]`` as its report (the markdown
    cell ``writeup``), and a graded record of ``auto`` points for each."""
    lab = load_lab(LAB)
    nb = json.loads(RELEASED.read_text(encoding="utf-8"))
    subs, out = root / "subs", root / "out"
    for student, text in students.items():
        for cell in nb["cells"]:
            if cell.get("id") == "writeup":
                cell["source"] = text
        (subs / student).mkdir(parents=True)
        (subs / student / "lab11-capstone.ipynb").write_text(json.dumps(nb), encoding="utf-8")
        questions = {q.id: {"score": auto if q.id == "q1" else 0.0, "max_score": q.points} for q in lab.auto_questions}
        write_student(out / student, {"student": student, "lab": lab.id, "status": "graded", "score": auto,
                                      "max_score": lab.max_score, "questions": questions, "tests": [], "notes": []}, lab)
    return subs, out


@contextmanager
def live(review):
    """Serve ``review`` from a thread; yields the URL with its token."""
    loop, box, ready = asyncio.new_event_loop(), {}, threading.Event()

    async def start():
        box["server"], box["url"] = listen(review, 0)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the review server did not start"
    try:
        yield box["url"]
    finally:
        loop.call_soon_threadsafe(box["server"].stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


class Client:
    """urllib with cookies; ``send`` posts JSON with tornado's XSRF header, as the page's script does."""

    def __init__(self, url: str):
        self.base = url.split("/?")[0]
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, dict]:
        try:
            with self.opener.open(self.base + path, timeout=10) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def send(self, action: str, data: dict, xsrf: bool = True) -> tuple[int, dict]:
        token = next((c.value for c in self.jar if c.name == "_xsrf"), "")
        req = urllib.request.Request(f"{self.base}/api/{action}", json.dumps(data).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"X-XSRFToken": token} if xsrf else {})})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}") if e.headers.get_content_type() == "application/json" else {}


class Page(HTMLParser):
    """Tags with their attributes, and the text, of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


@pytest.fixture
def served(tmp_path):
    subs, out = make_out(tmp_path, {"ana": "*fine*", "bo": "## Bo's report\n<script>alert('md')</script>",
                                    "zoe_angstrom": "Zoë Ångström writes.", "ümit ö": "Ümit writes."})
    review = open_review(out, LAB, subs, grader="ta0")
    with live(review) as url:
        yield url, subs, out


def test_without_the_token_every_request_is_refused(served):
    url, _, _ = served
    c = Client(url)
    for path in ("/", "/q/writeup/ana", "/static/review.js", "/?token=wrong"):
        status, body, _ = c.get(path)
        assert status == 403 and "needs the token" in body, (path, status)
    assert c.send("score", {"student": "ana", "question": "writeup", "points": 1})[0] == 403
    status, body, _ = c.get("/?token=" + url.split("token=")[1])
    assert status == 200 and "ana" in Page(body).text
    status, body, _ = c.get("/q/writeup/bo")  # later requests: the cookie
    assert status == 200 and "bo" in Page(body).text


def test_student_markdown_and_html_output_are_never_markup(served):
    url, subs, _ = served
    path = subs / "bo" / "lab11-capstone.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "code", "id": "bo-extra", "execution_count": 1, "source": "report()",
                        "metadata": {"edgekit": {"role": "answer", "question": "writeup"}},
                        "outputs": [SCRIPT_OUT, {"output_type": "stream", "name": "stdout", "text": "<img src=x onerror=alert(1)>"},
                                    {"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG, "text/plain": "<Figure>"}}]})
    path.write_text(json.dumps(nb), encoding="utf-8")
    c = Client(url)
    status, body, headers = c.get("/q/writeup/bo?token=" + url.split("token=")[1])
    assert status == 200
    page = Page(body)
    assert [a for t, a in page.tags if t == "script"] == [{"src": "/static/review.js"}]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "<script>alert('md')</script>" in page.text  # shown as text
    assert "<Report: plain view>" in page.text and "alert('out')" not in body  # text/plain instead of the HTML
    assert "<img src=x onerror=alert(1)>" in page.text
    imgs = [a for t, a in page.tags if t == "img"]
    assert imgs == [{"alt": "output image", "src": f"data:image/png;base64,{PNG}"}]
    assert ("h2", {}) in page.tags  # the markdown heading, rendered


def test_save_lands_in_gradebook_and_files_and_filters_follow(served):
    url, _, out = served
    c = Client(url)
    c.get("/?token=" + url.split("token=")[1])
    assert c.send("score", {"student": "bo", "question": "writeup", "points": 4, "comment": "Good."}, xsrf=False)[0] == 403
    status, reply = c.send("score", {"student": "bo", "question": "writeup", "points": 4, "comment": "Good <i>x</i>",
                                     "grader": "ta1"})
    assert (status, reply) == (200, {"saved": "bo", "graded": 1, "total": 4})
    status, reply = c.send("score", {"student": "ana", "question": "writeup", "points": 7})
    assert status == 400 and "writeup is worth 0 to 5 points; got 7" in reply["error"]
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert (rows["bo"]["writeup"], rows["bo"]["score"], rows["bo"]["max_score"]) == ("4", "7", "14")
    assert rows["ana"]["writeup"] == ""
    assert "Good <i>x</i>" in Page((out / "bo" / "feedback.html").read_text(encoding="utf-8")).text
    _, body, _ = c.get("/q/writeup/bo")
    page = Page(body)
    assert "1 of 4 graded" in page.text and "graded: 4 by ta1" in page.text
    assert ("textarea", {"id": "comment", "rows": "6"}) in page.tags and "Good <i>x</i>" in page.texts
    _, body, _ = c.get("/?q=writeup&filter=ungraded")  # bo is graded: the first ungraded is ana, then zoe
    assert 'data-student="ana"' in body and 'data-next="/q/writeup/zoe_angstrom?filter=ungraded"' in body
    assert c.send("flag", {"student": "zoe_angstrom", "question": "writeup", "flagged": True})[0] == 200
    _, body, _ = c.get("/?q=writeup&filter=flagged")
    assert 'data-student="zoe_angstrom"' in body and "flagged (1)" in Page(body).text
    for student in ("ana", "zoe_angstrom"):
        assert c.send("score", {"student": student, "question": "writeup", "points": 0})[0] == 200
    _, body, _ = c.get("/?q=writeup&filter=ungraded")  # a student id that is not ASCII, through the redirect
    assert 'data-student="ümit ö"' in body and "Ümit writes." in Page(body).text


def test_an_edited_notebook_is_shown_fresh(served):
    url, subs, _ = served
    c = Client(url)
    _, body, _ = c.get("/q/writeup/ana?token=" + url.split("token=")[1])
    assert "fine" in Page(body).text
    path = subs / "ana" / "lab11-capstone.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    next(cell for cell in nb["cells"] if cell.get("id") == "writeup")["source"] = "A second draft, longer."
    path.write_text(json.dumps(nb), encoding="utf-8")
    _, body, _ = c.get("/q/writeup/ana")
    assert "A second draft, longer." in Page(body).text


def test_cli_says_what_a_folder_lacks(tmp_path, capsys):
    assert main(["review", str(tmp_path)]) == 2
    assert "is not a grades folder" in capsys.readouterr().err
    _, out = make_out(tmp_path / "x", {"ana": "text"})
    assert main(["review", str(out)]) == 2  # no batch.json (records written by hand) and no --lab
    assert "give it: edgekit review OUT --lab LAB" in capsys.readouterr().err


def test_nbgrader_manually_graded_cells_are_manual_questions_with_their_answers():
    corpus = ROOT / "tests" / "fixtures" / "nbgrader-corpus" / "ug-ps1-problem1"
    lab = load_lab(corpus / "source.ipynb")
    manual = {q.id: q.points for q in lab.questions if q.manual}
    assert manual == {"sum_of_squares_equation": 1.0, "sum_of_squares_application": 2.0, "cell-938593c4a215c6cc": 4.0}
    assert lab.max_score == 3.0  # the autograded test cells only, as before
    from edgekit.grading.review import answer_cells

    nb = json.loads((corpus / "submissions" / "bitdiddle.ipynb").read_text(encoding="utf-8"))
    found = answer_cells(nb["cells"], "sum_of_squares_equation")
    assert [c["cell_type"] for c in found] == ["markdown"] and "sum_" in "".join(found[0]["source"])
