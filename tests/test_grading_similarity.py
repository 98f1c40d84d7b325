"""Copied answers (edgekit.grading.similarity): a planted copy is flagged, independent answers and the
shared stub are not; the report is escaped HTML. Answers are lab01's: its reference solution, a copy of
it with names, comments and spacing changed, and a different correct solution written apart."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit._errors import LabError
from edgekit.cli.main import main
from edgekit.grading import load_lab
from edgekit.grading.notebook import read_notebook, role
from edgekit.grading.similarity import compare, kgrams, report_html, tokens, winnow

ROOT = Path(__file__).parents[1]
LAB = ROOT / "labs" / "lab01-first-inference"
RELEASED = ROOT / "notebooks" / "lab01-first-inference" / "lab01-first-inference.ipynb"

# Another student's correct answers, written apart from the reference (loops, other names and calls).
INDEPENDENT = {
    "q1": '''# edgekit: answer q1
def to_nchw_rgb(bgr):
    """uint8 BGR (H, W, 3) -> float32 RGB (1, 3, H, W), values still 0..255."""
    h, w, _ = bgr.shape
    out = np.empty((1, 3, h, w), dtype=np.float32)
    for c in range(3):
        out[0, c] = bgr[:, :, 2 - c]
    return out
''',
    "q2": '''# edgekit: answer q2
def normalize(x, mean, std):
    """(x - mean[c]) / std[c] for every channel c of an NCHW float32 batch; float32 out."""
    y = np.empty_like(x, dtype=np.float32)
    for c in range(x.shape[1]):
        y[:, c] = (x[:, c] - mean[c]) / std[c]
    return y
''',
    "q3": '''# edgekit: answer q3
def letterbox_geometry(h, w, size):
    """(new_h, new_w, top, left) of an h x w image letterboxed into size = (target_h, target_w)."""
    th, tw = size
    if th / h < tw / w:
        scale = th / h
    else:
        scale = tw / w
    nh = max(round(h * scale), 1)
    nw = max(round(w * scale), 1)
    pad_top = (th - nh) // 2
    pad_left = (tw - nw) // 2
    return nh, nw, pad_top, pad_left


def letterbox(img, size, pad_value=0):
    """img resized to fit size = (target_h, target_w), aspect ratio kept, centred on a pad_value canvas."""
    nh, nw, t, l = letterbox_geometry(*img.shape[:2], size)
    small = cv2.resize(img, dsize=(nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((size[0], size[1], *img.shape[2:]), dtype=img.dtype)
    out[...] = pad_value
    out[t:t + nh, l:l + nw] = small
    return out
''',
    "q4": '''# edgekit: answer q4
def preprocess(bgr, spec):
    """A uint8 BGR photo -> the NCHW float32 input a letterbox model with this preprocess spec wants."""
    padded = letterbox(bgr, size=spec["size"], pad_value=spec["pad_value"])
    batch = to_nchw_rgb(padded)
    return normalize(batch, mean=spec["mean"], std=spec["std"])
''',
    "q5": '''# edgekit: answer q5
def softmax(logits):
    """Probabilities along the last axis; stable for large logits."""
    a = np.array(logits, dtype=float)
    shifted = np.exp(a - np.max(a, axis=-1, keepdims=True))
    total = np.sum(shifted, axis=-1, keepdims=True)
    return shifted / total


def top_k(probs, labels, k):
    """The labels of the k largest probabilities, best first (ties: smaller index first)."""
    ranked = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    return [labels[i] for i in ranked[:k]]


def read_digit(model, scan, k=3):
    """The top-k labels digits-cnn gives a uint8 scan of a dark digit on white paper."""
    inverted = (255 - scan).astype(np.uint8)
    tiny = cv2.resize(inverted, dsize=(8, 8), interpolation=cv2.INTER_AREA)
    batch = tiny.reshape(1, 1, 8, 8).astype(np.float32) / 255
    out = model(batch)[0]
    return top_k(softmax(out[0]), DIGIT_LABELS, k)
''',
}

# The reference's q5, copied: names changed, comments moved and rewritten (one says <script>), spacing changed.
COPIED_Q5 = '''# edgekit: answer q5
def softmax(logits):
    """Probabilities along the last axis; stable for large logits."""
    # <script>alert("copied")</script> shift so exp never overflows
    arr = np.asarray( logits, dtype = np.float64 )
    arr = arr - arr.max(axis=-1, keepdims=True)
    ex = np.exp(arr)

    return ex/ex.sum(axis=-1, keepdims=True)


def top_k(probs, labels, k):
    """The labels of the k largest probabilities, best first (ties: smaller index first)."""
    idx = np.argsort(-np.asarray(probs), kind="stable")[:k]   # stable sort: ties in order
    return [labels[j] for j in idx]


def read_digit(model, scan, k=3):
    """The top-k labels digits-cnn gives a uint8 scan of a dark digit on white paper."""
    inv = 255 - scan
    tiny = cv2.resize(inv, (8, 8), interpolation=cv2.INTER_AREA)
    inp = (tiny.astype(np.float32) / 255.0).reshape(1, 1, 8, 8)
    out, = model(inp)
    return top_k(softmax(out[0]), DIGIT_LABELS, k)
'''


def reference_answers() -> dict[str, str]:
    """lab01's reference solutions as a student would hand them in: the solution markers gone."""
    lab = load_lab(LAB)
    found = {}
    for cell in lab.notebook().cells:
        kind, qid = role(cell)
        if kind == "answer":
            found[qid] = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[^\n]*\n", "", cell.source, flags=re.MULTILINE)
    return found


def write_submission(root: Path, student: str, answers: dict[str, str]) -> None:
    """The released notebook with these answer cells filled in (the others left as the stub)."""
    import nbformat

    nb = read_notebook(RELEASED)
    for cell in nb.cells:
        kind, qid = role(cell)
        if kind == "answer" and qid in answers:
            cell.source = answers[qid]
    (root / student).mkdir(parents=True)
    nbformat.write(nb, root / student / "lab01-first-inference.ipynb")


@pytest.fixture(scope="module")
def class_of(tmp_path_factory):
    ref = reference_answers()
    subs = tmp_path_factory.mktemp("similar") / "subs"
    write_submission(subs, "Nguyễn Văn A", ref)
    write_submission(subs, "Zoë Ångström", {"q5": COPIED_Q5})
    write_submission(subs, "independent", INDEPENDENT)
    write_submission(subs, "stub-only-1", {})
    write_submission(subs, "stub-only-2", {})
    # a copy of the reference's q5 with a cell that does not tokenize (an unclosed bracket) after it
    write_submission(subs, "unclosed", {"q5": COPIED_Q5.replace("arr = arr", "tmp = (1, 2\n    arr = arr")})
    return subs


@pytest.fixture(scope="module")
def sim(class_of):
    return compare(load_lab(LAB), class_of)


def pairs(sim, question=None) -> set[frozenset]:
    return {frozenset((m.a, m.b)) for m in sim.matches if question in (None, m.question)}


def test_renaming_comments_and_spacing_leave_the_tokens_alike():
    ref = reference_answers()["q5"]
    assert [t for t, _ in tokens(ref)] == [t for t, _ in tokens(COPIED_Q5)]


def test_a_planted_copy_is_flagged(sim):
    best = [m for m in sim.matches if {m.a, m.b} == {"Nguyễn Văn A", "Zoë Ångström"}]
    assert [m.question for m in best] == ["q5"] and best[0].score == 1.0, sim.matches
    a_lines, b_lines = sim.lines(best[0])
    assert a_lines and b_lines  # the shared regions map back to lines of both answers


def test_independent_correct_answers_and_the_stub_are_not_flagged(sim):
    assert not any("independent" in p or "stub-only-1" in p or "stub-only-2" in p for p in pairs(sim)), sim.matches
    # the stub alone is base code: nothing left to compare, listed as such
    assert any(s.startswith("stub-only-1 q1:") and "too short" in s for s in sim.skipped)


def test_a_cell_that_does_not_tokenize_still_counts(sim):
    assert frozenset(("Nguyễn Văn A", "unclosed")) in pairs(sim, "q5")
    assert tokens("x = (1,\ny = 'open\n")  # the line-by-line reading, not an exception


def test_the_report_escapes_what_students_wrote(sim):
    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.text.append(data)

    page = Tags()
    page.feed(report_html(sim))
    assert "script" not in page.tags and "mark" in page.tags
    assert '<script>alert("copied")</script>' in "".join(page.text)
    assert "changes no grade" in "".join(page.text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcdefgh"), max_size=40), st.lists(st.sampled_from("abcdefgh"), max_size=40),
       st.lists(st.sampled_from("abcdefgh"), min_size=8, max_size=20))
def test_winnowing_keeps_a_fingerprint_of_every_long_enough_shared_run(a, b, run):
    """The guarantee of winnowing: a shared run of k + window - 1 tokens leaves a fingerprint in both."""
    k, window = 5, 4
    fa, fb = ([g[0] for g in kgrams([(t, 0) for t in seq], k)] for seq in (a + run + b, b + run + a))
    assert {fa[i] for i in winnow(fa, window)} & {fb[i] for i in winnow(fb, window)}


def test_winnow_picks_the_rightmost_minimum_of_each_window():
    assert winnow([5, 1, 1, 7, 9, 3, 3], 3) == [2, 5, 6]  # windows: 1,1 -> 2; (1,7,9) -> 2; (7,9,3) -> 5; (9,3,3) -> 6
    assert winnow([4, 2], 4) == [1]  # shorter than a window: its minimum


def test_an_idiom_in_many_answers_is_not_evidence(tmp_path):
    """Twelve answers share a loop (and nothing else): more than 10% of them have it, so it is no evidence."""
    idiom = ("# edgekit: answer q2\nfor i in range(len(xs)):\n"
             "    total = total + xs[i] * weights[i] - offsets[i] / scale ** 2\n")
    for n in range(12):
        write_submission(tmp_path, f"s{n}", {"q2": idiom + f"print({n})\n"})
    assert len(pairs(compare(load_lab(LAB), tmp_path, common=1.0), "q2")) == 66  # every pair, when idioms count
    sim = compare(load_lab(LAB), tmp_path)
    assert not sim.matches and sum("s0 q2: 0 fingerprint(s)" in s for s in sim.skipped) == 1, sim.skipped


def test_cli_writes_the_report_and_refuses_a_grades_folder(class_of, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["similar", str(class_of), "--lab", str(LAB), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "q5" in said and "flags only" in said and out.is_file()
    grades = tmp_path / "graded"
    (grades / ".edgekit" / "records").mkdir(parents=True)
    assert main(["similar", str(grades), "--lab", str(LAB)]) == 2
    assert "pass the submissions folder" in capsys.readouterr().err
    with pytest.raises(LabError, match="expected k >= 1"):
        compare(load_lab(LAB), class_of, k=0)
