"""No command prints a timing without its clean/suspect word (issue 16, item 3).

Each command runs on digits-cnn with a tiny budget; its terminal output is cut into printed units (a
line plus its indented continuation lines, or a table with its title) and every unit that shows a
timing (ms, us, FPS, inferences/s, a speed-up "1.23x", a speed ratio) must say "clean" or "suspect".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from edgekit.cli.main import main

TIMING = re.compile(r"\d\s*(ms|us|µs)\b|\bFPS\b|inferences/s|\d\.\d+x\b|speed ratio", re.I)
WORD = re.compile(r"\bclean\b|\bsuspect\b", re.I)
TINY = ["--min-runs", "20", "--min-s", "0", "--max-s", "0.3", "--warmup-s", "0"]
CONTINUES = tuple(" \t┃│┏┡└╭╰├┗┣━─╇╞")


def units(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if out and (not line.strip() or line.startswith(CONTINUES)):
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def unflagged(text: str) -> list[str]:
    return [u for u in units(text) if TIMING.search(u) and not WORD.search(u)]


def run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_checker_catches_a_bare_timing():
    assert unflagged("m: p50 1.0 ms\n  p90 2.0 ms") == ["m: p50 1.0 ms\n  p90 2.0 ms"]
    assert unflagged("m: p50 1.0 ms [clean]\n  p90 2.0 ms\nwrote a.json") == []
    assert unflagged("speed-up 1.25x\n[suspect: CPU pressure]") == ["speed-up 1.25x"]


@pytest.mark.slow  # about 4 s on the 2-core development VM
def test_bench_sweep_compare_profile_report(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    outs = [run(capsys, "bench", "digits-cnn", "--threads", "1,2", *TINY, "--json", str(a)),
            run(capsys, "bench", "digits-cnn", *TINY, "--table", "--json", str(b)),
            run(capsys, "compare", str(a), str(b)),
            run(capsys, "profile", "digits-cnn", "--runs", "5")]
    for out in outs:
        assert TIMING.search(out) and not unflagged(out), out
    assert "sensors missing" not in outs[0] or outs[0].count("sensors missing") == 1  # once per command
    html = tmp_path / "r.html"
    run(capsys, "report", "-o", str(html), str(a), str(b))
    head = html.read_text().split("<h2>Summary</h2>")[0]
    assert head.count("[clean]") + head.count("[suspect") == 3, head[-2000:]


def test_suite_progress_lines(tmp_path, capsys):
    suite = tmp_path / "s.json"
    suite.write_text(json.dumps({"name": "s", "models": ["digits-cnn"], "settings": {"threads": [1]},
                                 "budget": {"min_runs": 20, "min_s": 0.0, "max_s": 0.3, "warmup_s": 0.0}}))
    out = run(capsys, "bench", "--suite", str(suite), "--out", str(tmp_path / "out"))
    assert "p50" in out and not unflagged(out), out


@pytest.mark.slow  # about 4 s
def test_optimize_and_quantize(tmp_path, capsys):
    out = run(capsys, "optimize", "digits-cnn", "--levels", "disable,extended", "--rounds", "1")
    assert TIMING.search(out) and not unflagged(out), out
    out = run(capsys, "quantize", "digits-cnn", "--out", str(tmp_path / "q.onnx"), "--method", "dynamic",
              "--rounds", "1")
    assert "latency" in out and not unflagged(out), out


def test_live(tmp_path, capsys, monkeypatch):
    from edgekit.vision import live

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(live.sys, "platform", "linux")
    out = run(capsys, "live", "face-detector", "--source", "synthetic://?frames=6&size=160x120",
              "--out", str(tmp_path / "a.mp4"))
    assert "FPS" in out and not unflagged(out), out


@pytest.mark.slow
def test_ab_and_tour(tmp_path):
    for argv in (["bench", "digits-cnn", "--ab", "threads=1", "threads=2", "--rounds", "2", "--min-s", "0.05"],
                 ["tour", "--quick", "--out", str(tmp_path / "tour")]):
        p = subprocess.run([sys.executable, "-m", "edgekit", *argv], capture_output=True, text=True, check=False)
        assert p.returncode == 0, p.stderr[-2000:]
        assert TIMING.search(p.stdout) and not unflagged(p.stdout), p.stdout
