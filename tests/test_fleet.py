"""Fleet benchmarking on a real dask LocalCluster on loopback: two worker processes, two board labels."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from edgekit._errors import MissingExtraError
from edgekit.cli.main import main
from edgekit.perf.fleet import FleetError, find_boards, run_fleet
from edgekit.perf.suite import job_file, jobs, load_suite

BUDGET = {"min_runs": 10, "min_s": 0.05, "max_s": 1.0, "warmup_s": 0.0, "warmup_runs": 2}


@pytest.fixture(scope="module")
def cluster():
    """Boards board-a and board-b: one worker process each (with a nanny, which restarts a killed one)."""
    distributed = pytest.importorskip("distributed", reason="the dist extra is not installed (pip install 'edgekit[dist]')")
    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR) as lc:
        for label in ("board-a", "board-b"):
            lc.worker_spec[f"{label}-1"] = {"cls": distributed.Nanny, "options": {
                "nthreads": 1, "resources": {label: 1}, "host": "127.0.0.1", "silence_logs": logging.ERROR}}
        lc.scale(len(lc.worker_spec))
        with distributed.Client(lc, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            yield client


def write_suite(path: Path, models, settings, **budget) -> Path:
    path.write_text(json.dumps({"name": "fleet-test", "models": [str(m) for m in models], "settings": settings,
                                "budget": {**BUDGET, **budget}}))
    return path


def statuses(out: Path) -> dict[str, str]:
    return {f"{j['board']}/{Path(j['file']).name}": j["status"] for j in json.loads((out / "fleet.json").read_text())["jobs"]}


def test_find_boards_labels_folders_and_errors():
    ws = {"tcp://h:1": {"name": "pi-1", "host": "h", "resources": {"board-rpi5": 1}},
          "tcp://h:2": {"name": "pi-2", "host": "h", "resources": {"board-rpi5": 1}},
          "tcp://j:1": {"name": "jet", "host": "j", "resources": {"board-jetson": 1}}}
    assert [(b.folder, b.address) for b in find_boards(ws, ["board-jetson", "board-rpi5"])] == [
        ("board-jetson", "tcp://j:1"), ("board-rpi5@pi-1", "tcp://h:1"), ("board-rpi5@pi-2", "tcp://h:2")]
    assert {b.label for b in find_boards(ws)} == {"board-rpi5", "board-jetson"}  # no --on: every label
    with pytest.raises(FleetError, match=r"board-nano; the cluster has: board-jetson, board-rpi5"):
        find_boards(ws, ["board-jetson", "board-nano"])
    with pytest.raises(FleetError, match=r"carries a resource label .*--resources"):
        find_boards({"tcp://h:1": {"name": "x", "resources": {}}})


def test_missing_dist_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    suite = write_suite(tmp_path / "s.json", ["digits-cnn"], {})
    with pytest.raises(MissingExtraError, match=r"pip install 'edgekit\[dist\]'"):
        run_fleet(suite, tmp_path / "out", "tcp://127.0.0.1:1")


def test_suite_runs_on_every_board_with_its_identity_and_resumes(cluster, tmp_path, relu_path):
    suite = write_suite(tmp_path / "s.json", ["digits-cnn", relu_path], {"threads": [1, 2]})
    out = tmp_path / "out"
    run = run_fleet(suite, out, cluster, ["board-a", "board-b"])
    assert run.ok and run.counts() == {"done": 8}, run.to_dict()
    names = sorted(job_file(out, m, c).name for m, c in jobs(load_suite(suite)))
    workers = {}
    for board in ("board-a", "board-b"):
        files = sorted((out / board).glob("*.json"))
        assert sorted(f.name for f in files) == names, files
        results = [json.loads(f.read_text()) for f in files]
        assert {r["fleet"]["board"] for r in results} == {board} and {r["fleet"]["label"] for r in results} == {board}
        assert all(r["device"]["fingerprint"] and r["suite"] == "fleet-test" for r in results)
        assert sorted(r["model"] for r in results) == ["digits-cnn", "digits-cnn", "relu", "relu"]
        workers[board] = {(r["fleet"]["worker"], r["fleet"]["address"]) for r in results}
    assert workers == {"board-a": {("board-a-1", run.boards[0].address)},
                       "board-b": {("board-b-1", run.boards[1].address)}}, workers
    # a re-run benchmarks nothing that is there; a missing result is redone on its own board only
    relu2 = job_file(out, str(relu_path), {"threads": 2}).name  # the shipped file keeps its name: "relu"
    (out / "board-b" / relu2).unlink()
    mtime = (out / "board-a" / relu2).stat().st_mtime_ns
    again = run_fleet(suite, out, cluster, ["board-a", "board-b"])
    assert again.counts() == {"skipped": 7, "done": 1}, again.to_dict()
    assert statuses(out)[f"board-b/{relu2}"] == "done"
    assert (out / "board-a" / relu2).stat().st_mtime_ns == mtime


def test_cli_fleet_then_compare_and_report_side_by_side(cluster, tmp_path, capsys):
    suite = write_suite(tmp_path / "s.json", ["digits-cnn"], {"threads": [1]})
    addr, out = cluster.scheduler.address, tmp_path / "fleet"
    assert main(["bench", "--suite", str(suite), "--scheduler", addr, "--on", "board-a,board-b", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "board-a" in text and "board-b" in text and "fleet run in" in text, text
    assert main(["compare", str(out), "--json", str(tmp_path / "cmp.json")]) == 0  # a folder: fleet.json is no result
    (cmp,) = json.loads((tmp_path / "cmp.json").read_text())
    assert (cmp["baseline"], cmp["other"]) == ("digits-cnn @board-a", "digits-cnn @board-b"), cmp
    html = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(html)]) == 0
    page = html.read_text()
    assert "board-a (board-a-1 on" in page and "board-b (board-b-1 on" in page
    only_b = tmp_path / "only-b"
    assert main(["bench", "--suite", str(suite), "--scheduler", addr, "--on", "board-b", "--out", str(only_b)]) == 0
    assert sorted(p.name for p in only_b.iterdir()) == ["board-b", "fleet.json"]
    capsys.readouterr()
    assert main(["bench", "--suite", str(suite), "--scheduler", addr, "--on", "board-x", "--out", str(only_b)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "board-x" in err and "the cluster has: board-a, board-b" in err, err
    assert main(["bench", "--suite", str(suite), "--on", "board-a", "--out", str(only_b)]) == 2
    assert "--scheduler" in capsys.readouterr().err


@pytest.mark.parametrize("rejoin_s", [30, 0], ids=["board-comes-back", "board-stays-away"])
def test_lost_worker_loses_only_its_inflight_benchmark(cluster, tmp_path, rejoin_s):
    """Kill board-a's worker process during its slow job: that job is reported lost and board-b finishes.
    If board-a comes back under its name (its nanny restarts it) the rest of its suite runs there, else
    the rest is reported not-run; a re-run redoes just what is missing."""
    cluster.wait_for_workers(2, timeout=60)  # a board killed by an earlier case is back
    suite = write_suite(tmp_path / "s.json", ["digits-cnn"], {"min_s": [0.05, 2.5, 0.1]}, max_s=4.0,
                        max_runs=10**7)  # the slow job really takes 2.5 s
    out = tmp_path / "out"
    pids = cluster.run(os.getpid)
    old = next(a for a, w in cluster.scheduler_info()["workers"].items() if w["name"] == "board-a-1")
    timers = []

    def on_event(job):  # board-a's first job is done, so its slow one starts now: kill it 0.7 s in
        if job.board == "board-a" and job.status == "done" and not timers:
            timers.append(threading.Timer(0.7, os.kill, (pids[old], signal.SIGKILL)))
            timers[0].start()

    run = run_fleet(suite, out, cluster, ["board-a", "board-b"], on_event=on_event, rejoin_s=rejoin_s)
    rest = "done" if rejoin_s else "not-run"
    st = statuses(out)
    assert st == {"board-a/digits-cnn__min_s-0.05.json": "done", "board-a/digits-cnn__min_s-2.5.json": "lost",
                  "board-a/digits-cnn__min_s-0.1.json": rest, "board-b/digits-cnn__min_s-0.05.json": "done",
                  "board-b/digits-cnn__min_s-2.5.json": "done", "board-b/digits-cnn__min_s-0.1.json": "done"}, st
    (lost,) = [j for j in run.jobs if j.status == "lost"]
    assert f"worker board-a-1 ({old}) left while running" in lost.message, lost.message
    assert not Path(lost.file).exists() and not run.ok
    if rejoin_s:
        after = json.loads((out / "board-a" / "digits-cnn__min_s-0.1.json").read_text())["fleet"]
        assert after["worker"] == "board-a-1" and after["address"] != old  # the restarted board-a
    cluster.wait_for_workers(2, timeout=60)
    again = run_fleet(suite, out, cluster, ["board-a", "board-b"])
    assert again.ok and again.counts() == {"skipped": 5 if rejoin_s else 4, "done": 1 if rejoin_s else 2}, again.to_dict()


def test_scheduler_without_a_suite_is_refused_in_one_line(capsys):
    assert main(["bench", "digits-cnn", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgekit: error: ") and err.count("\n") == 1 and "add --suite FILE" in err, err
