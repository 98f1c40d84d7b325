"""The rubric grading page (`edgekit review`) in a real browser: headless Debian Chromium driven by
Playwright, the set-up of tests/test_browser.py (same skip / EDGEKIT_REQUIRE_BROWSER rule).

A TA grades three students' `writeup` by keyboard (digits pick a level, typing j/k in the comment
box stays text, Ctrl+Enter and Enter save and move on); then two TAs in two browser contexts save
at once; a reload shows what was saved; grades.csv and feedback.html hold every grade.
"""

from __future__ import annotations

import csv
import os
import re
from html.parser import HTMLParser

import pytest

from conftest import skip_or_fail
from test_browser import CHROMIUM, TIMEOUT_MS
from test_grading_review import LAB, live, make_out

pytestmark = pytest.mark.slow


def _require_browser():
    missing = [] if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK) else [f"{CHROMIUM} (Debian's chromium)"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    skip_or_fail("the review page's browser test", missing, "bash tests/browser_setup.sh", "EDGEKIT_REQUIRE_BROWSER")


class _Text(HTMLParser):
    def __init__(self, path):
        super().__init__()
        self.parts = []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_data(self, data):
        self.parts.append(data)


def test_grade_by_keyboard_two_tas_at_once_then_reload(tmp_path):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from edgekit.grading.review import open_review

    subs, out = make_out(tmp_path, {"ana": "We ship **int8**.", "bo": "fp32, 1 thread.", "zoe_angstrom": "Zoë: batch 8."})
    review = open_review(out, LAB, subs, grader="ta0")
    xdg = {f"XDG_{d.upper()}_HOME": str(tmp_path / "xdg" / d) for d in ("config", "cache", "data")}
    with live(review) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, env={**os.environ, **xdg},
                                     args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            student = page.locator("#student")
            page.goto(url)
            expect(student).to_have_text("ana")
            expect(page.locator(".cell.markdown strong")).to_have_text("int8")  # the answer, rendered
            page.keyboard.press("4")
            expect(page.locator("#points")).to_have_value("4")
            page.keyboard.press("c")  # to the comment box: j and k are text there, not navigation
            page.keyboard.type("Clear decision; j and k stay.")
            page.keyboard.press("Control+Enter")
            expect(student).to_have_text("bo")
            expect(page.locator("#progress")).to_have_text("1 of 3 graded")
            page.keyboard.press("5")
            page.keyboard.press("Enter")
            expect(student).to_have_text("zoe_angstrom")
            page.keyboard.press("3")
            page.keyboard.press("Enter")  # the last one: saved, stays
            expect(page.locator("#status")).to_have_text("saved")
            expect(page.locator("#progress")).to_have_text("3 of 3 graded")
            page.keyboard.press("k")
            expect(student).to_have_text("bo")

            tas = []  # two TAs, each in their own browser context, saving at the same moment
            for who, name, key in (("ta1", "ana", "2"), ("ta2", "bo", "1")):
                p = browser.new_context().new_page()
                p.set_default_timeout(TIMEOUT_MS)
                p.goto(f"{url.split('/?')[0]}/q/writeup/{name}?token={review.token}")
                p.fill("#grader", who)
                p.keyboard.press("Escape")  # out of the grader box: keys go to the page again
                p.keyboard.press(key)
                expect(p.locator("#points")).to_have_value(key)
                tas.append(p)
            for p in tas:
                p.keyboard.press("Enter")
            expect(tas[0].locator("#student")).to_have_text("bo")
            expect(tas[1].locator("#student")).to_have_text("zoe_angstrom")

            page.goto(f"{url.split('/?')[0]}/q/writeup/ana")
            page.reload()
            expect(page.locator("#points")).to_have_value("2")
            expect(page.locator("#comment")).to_have_value("Clear decision; j and k stay.")
            expect(page.locator("#status")).to_contain_text(re.compile(r"graded: 2 by ta1"))
            expect(page.locator("button.level.picked")).to_have_attribute("data-key", "2")
        finally:
            browser.close()
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert {s: (r["writeup"], r["score"]) for s, r in rows.items()} == {
        "ana": ("2", "5"), "bo": ("1", "4"), "zoe_angstrom": ("3", "6")}  # 3 autograded points each
    feedback = " ".join(" ".join(_Text(out / "ana" / "feedback.html").parts).split())
    assert "writeup 2 / 5 Clear decision; j and k stay." in feedback
