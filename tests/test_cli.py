"""The command line, run as a user would (subprocess) and in-process for speed."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from edgekit.cli.main import build_parser, main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, cwd=cwd)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand of the one parser, found by walking it (a new subcommand is tested unasked)."""
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


SUBCOMMANDS = sorted(subcommands())


def test_the_walk_finds_every_group():
    assert {"tour", "doctor", "models", "info", "bench", "compare", "report", "profile", "run", "live",
            "npu-check", "eval", "quantize", "optimize", "lab", "check", "grade"} <= set(SUBCOMMANDS)


def test_help_and_version():
    out = run_cli("--help")
    assert out.returncode == 0 and "tour" in out.stdout and "doctor" in out.stdout
    assert "edgekit 0.1.0" in run_cli("--version").stdout


def test_building_the_parser_imports_no_heavy_library():
    code = ("import sys; from edgekit.cli.main import build_parser; build_parser(); "
            "print([m for m in ('numpy', 'onnxruntime', 'cv2', 'onnx', 'rich') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_answers_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: edgekit {name}")


def _value(action: argparse.Action) -> list[str]:
    """A value this option or positional accepts: a choice, or the first candidate its type takes."""
    n = 1 if action.nargs in (None, "?", "*", "+") else action.nargs
    if action.choices:
        return [str(next(iter(action.choices)))] * n
    for candidate in ("1", "on", "all", "threads=1", "x"):
        try:
            (action.type or str)(candidate)
            return [candidate] * n
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
    raise AssertionError(f"no test value for {action.dest}")


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_takes_options_before_positionals(name):
    """Every option of the subcommand, given before its positionals, parses as it does after them."""
    sub = subcommands()[name]
    positionals, options = [], []
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            positionals += _value(action)
        else:
            options += [action.option_strings[-1], *([] if action.nargs == 0 else _value(action))]
    parser = build_parser()
    first = parser.parse_args([name, *options, *positionals])
    last = parser.parse_args([name, *positionals, *options])
    assert vars(first) == vars(last)


def one_line_error(capsys, *argv: str) -> str:
    """Run ``edgekit *argv``; it must fail with status 2 and one ``edgekit: error:`` line on stderr."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("edgekit: error: ") and err.count("\n") == 1, (rc, err)
    return err


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "unknown.json").write_text(json.dumps({"models": ["digits-cnn"], "settings": {"thread": [1]}}))
    (tmp_path / "scalar.json").write_text(json.dumps({"models": ["digits-cnn"], "settings": {"threads": 2}}))
    return tmp_path


# argv (with {tmp} for the fixture folder) -> a part of the one error line: the mistakes named in
# issue 14, then the others found by trying each subcommand with bad values
MISTAKES = [
    (["bench", "digits-cnn", "--optimization", "fast"], "argument --optimization: expected a comma list of disable"),
    (["bench", "--suite", "{tmp}/missing.json"], "no suite file at"),
    (["bench", "--suite", "{tmp}/bad.json"], "cannot be read as JSON"),
    (["bench", "--suite", "{tmp}/list.json"], "got a JSON list"),
    (["bench", "--suite", "{tmp}/unknown.json"], "unknown setting 'thread'"),
    (["bench", "--suite", "{tmp}/scalar.json"], "each setting takes a list of values"),
    (["bench", "digits-cnn", "--ab", "thread=1", "threads=2"], "A/B config 'thread=1': expected key=value pairs"),
    (["bench", "digits-cnn", "--ab", "threads=x", "threads=2"], "threads takes an integer, got 'x'"),
    (["bench", "digits-cnn", "--threads", "one"], "argument --threads: expected comma-separated integers"),
    (["bench", "digits-cnn", "--batch", "0"], "argument --batch: expected comma-separated integers >= 1"),
    (["bench", "digits-cnn", "--min-runs", "0"], "argument --min-runs: expected an integer >= 1"),
    (["bench", "digits-cnn", "--mode", "fast"], "argument --mode: invalid choice: 'fast'"),
    (["bench"], "name a MODEL"),
    (["bench", "digits-cnn", "--timed", "cpp"], "argument --timed: invalid choice: 'cpp'"),
    (["bench", "digits-cnn", "--repeat", "0"], "argument --repeat: expected auto or an integer >= 1, got '0'"),
    (["compare", "a.json", "b.json", "--min-effect", "5"], "argument --min-effect: expected a fraction like 0.02"),
    (["bench", "--ab", "threads=1", "threads=2"], "name a MODEL too"),
    (["bench", "digits-cnn", "--scheduler", "tcp://127.0.0.1:1"], "add --suite FILE"),
    (["compare", "{tmp}/bad.json"], "is not JSON"),
    (["report", "-o", "{tmp}/x.html", "{tmp}/r.json"], "no result file at"),
    (["report", "{tmp}/bad.json"], "is not JSON"),
    (["profile", "--runs", "0", "digits-cnn"], "argument --runs: expected an integer >= 1, got '0'"),
    (["profile", "digits-cnn", "--optimization", "fast"], "argument --optimization: invalid choice"),
    (["profile", "{tmp}/missing.onnx"], "no model file"),
    (["info", "{tmp}/missing.onnx"], "no model file"),
    (["info", "{tmp}/bad.json"], "is not a valid ONNX model"),
    (["models", "info"], "name a model"),
    (["models", "info", "nosuch"], "no zoo model 'nosuch'"),
    (["run", "digits-cnn", "{tmp}/missing.jpg"], "no image file"),
    (["eval", "digits-cnn", "digits:nosuch"], "unknown dataset 'digits:nosuch'"),
    (["quantize", "digits-cnn", "--out", "{tmp}/q.onnx", "--method", "int3"], "argument --method: invalid choice"),
    (["optimize", "digits-cnn", "--levels", "fast"], "argument --levels: levels are a comma list"),
    (["live", "nosuch"], "edgekit live needs a zoo model"),
    (["lab", "info", "{tmp}/nosuch"], "is not a lab"),
    (["check", "{tmp}/nosuch.ipynb"], "no such file"),
    (["doctor", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("argv, says", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistake_is_one_error_line(argv, says, files, capsys):
    err = one_line_error(capsys, *(a.replace("{tmp}", str(files)) for a in argv))
    assert says in err, err


def test_an_unwritable_output_is_one_error_line(tmp_path, capsys):
    err = one_line_error(capsys, "bench", "digits-cnn", "--repeat", "1", "--min-runs", "1", "--min-s", "0", "--max-s", "0.2",
                         "--quiet", "--json", str(tmp_path / "no" / "such" / "out.json"))
    assert "No such file or directory" in err and "out.json" in err, err


def test_errors_are_one_line_without_traceback_in_a_real_process(tmp_path):
    for argv in (["info", str(tmp_path / "missing.onnx")], ["profile", "--runs", "2", str(tmp_path / "m.onnx")]):
        out = run_cli(*argv)
        assert out.returncode == 2
        assert out.stderr.startswith("edgekit: error: no model file") and out.stderr.count("\n") == 1, out.stderr


def test_ab_block_failure_is_one_line(capsys):
    err = one_line_error(capsys, "bench", "digits-cnn", "--ab", "opt=fast", "threads=1", "--rounds", "1", "--min-s", "0")
    assert "A/B block A (opt=fast) of digits-cnn: optimization must be one of" in err, err
    err = one_line_error(capsys, "bench", "--ab", "model=missing.onnx", "threads=1", "digits-cnn", "--rounds", "1")
    assert err.startswith("edgekit: error: A/B block A (model=missing.onnx) of missing.onnx: "), err


def test_cli_optimization_levels_match_the_runtime():
    from edgekit.cli.argtypes import OPTIMIZATION_LEVELS
    from edgekit.runtime.model import OPTIMIZATION_LEVELS as RUNTIME

    assert OPTIMIZATION_LEVELS == RUNTIME


def test_info_json(capsys):
    assert main(["info", "digits-cnn", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "digits-cnn" and d["op_histogram"]["Conv"] == 2


def test_models_list_and_verify(capsys):
    assert main(["models", "list"]) == 0
    assert "digits-cnn" in capsys.readouterr().out
    assert main(["models", "verify", "digits-cnn"]) == 0
    assert "accuracy 0.98" in capsys.readouterr().out


def test_bench_writes_json_with_percentiles_and_samples(tmp_path):
    out = tmp_path / "out.json"
    assert main(["bench", "--repeat", "1", "--min-runs", "30", "--min-s", "0.1", "--json", str(out), "digits-cnn"]) == 0
    d = json.loads(out.read_text())
    assert {"p50", "p90", "p99"} <= set(d["latency_ms"]) and len(d["samples_ms"]) == d["latency_ms"]["n"]
    assert d["latency_ms"]["n"] >= 30


def test_bench_thread_sweep(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["bench", "digits-cnn", "--repeat", "1", "--threads", "1,2", "--min-runs", "10", "--min-s", "0", "--json", str(out)]) == 0
    assert [r["config"]["threads"] for r in json.loads(out.read_text())] == [1, 2]


@pytest.mark.slow
def test_tour_quick(tmp_path):
    out = run_cli("tour", "--quick", "--out", str(tmp_path / "tour"))
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((tmp_path / "tour" / "tour.json").read_text())
    assert record["digits_accuracy"] >= 0.97
    assert {b["model"] for b in record["benchmarks"]} == {"digits-cnn", "mobilenetv2-224"}
    assert (tmp_path / "tour" / "tour.png").stat().st_size > 10_000


def test_bench_compare_report_profile_end_to_end(tmp_path, capsys):
    a = tmp_path / "a.json"
    assert main(["bench", "digits-cnn", "--repeat", "1", "--min-runs", "50", "--min-s", "0.1", "--quiet", "--json", str(a)]) == 0
    # B: the same run, every sample twice as long; C: an exact copy. The verdicts are known.
    result = json.loads(a.read_text())
    (b := tmp_path / "b.json").write_text(json.dumps({**result, "samples_ms": [2 * s for s in result["samples_ms"]]}))
    (c := tmp_path / "c.json").write_text(json.dumps(result))
    capsys.readouterr()
    assert main(["compare", "--json", str(tmp_path / "cmp.json"), str(a), str(b), str(c)]) == 0
    slow, same = (d["verdict"] for d in json.loads((tmp_path / "cmp.json").read_text()))
    assert slow.startswith("digits-cnn (b) is 2.00x slower than digits-cnn (a)"), slow
    assert same.startswith(tuple(f"no {w} difference (digits-cnn (c)/digits-cnn (a) speed ratio 1.0"
                                 for w in ("meaningful", "significant"))), same  # inside +-2%, or a wider CI
    assert slow in capsys.readouterr().out
    prof = tmp_path / "prof.json"
    assert main(["profile", "--runs", "5", "--json", str(prof), "digits-cnn"]) == 0
    assert json.loads(prof.read_text())["runs"] == 5
    html = tmp_path / "r.html"
    assert main(["report", "-o", str(html), "--profile", str(prof), str(a), str(b)]) == 0
    assert html.read_text().count("data:image/png;base64,") >= 4
    csv_out = tmp_path / "r.csv"
    assert main(["bench", "digits-cnn", "--repeat", "1", "--min-runs", "10", "--min-s", "0", "--quiet", "--csv", str(csv_out)]) == 0
    assert csv_out.read_text().count("\n") == 2


def test_bench_repeat_keeps_each_run_and_times_the_public_call(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", "digits-cnn", "--repeat", "2", "--timed", "public", "--min-runs", "20", "--min-s", "0",
                 "--warmup-s", "0", "--quiet", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert len(r["runs"]) == 2 and r["latency_ms"]["runs"] == 2
    assert len(r["samples_ms"]) == r["runs"][0]["n_samples"] + r["runs"][1]["n_samples"], "the summary pools the runs"
    assert r["latency_ms"]["n"] == sum(x["n_samples"] for x in r["runs"])
    lo, hi = r["latency_ms"]["p50_ci"]  # the CI over runs, around the geometric mean of the runs' medians
    assert lo <= r["latency_ms"]["p50_runs"] <= hi and r["latency_ms"]["p50_ci_within_runs"]
    assert r["runs"][0]["started_at"] < r["runs"][1]["started_at"], "two processes, one after the other"
    assert (r["config"]["timed"], r["timed"]) == ("public", "InferenceSession.run (public API)")


def _runs_result(median_ms, seed, threads, k):
    """A result of k runs whose run medians scatter 1% around median_ms (a hierarchical model)."""
    rng = np.random.default_rng(seed)
    runs = [(median_ms * np.exp(rng.normal(0, 0.01)) * rng.lognormal(0, 0.1, 300)).tolist() for _ in range(k)]
    pooled = [s for run in runs for s in run]
    return {"schema_version": 1, "model": "m", "config": {"threads": threads}, "samples_ms": pooled,
            "latency_ms": {"n": len(pooled)}, "runs": [{"samples_ms": run} for run in runs]}


def test_compare_min_effect_and_the_single_run_caveat(tmp_path, capsys):
    files = []
    for name, med, seed, threads, k in (("a", 1.0, 1, 1, 6), ("b", 1.0, 2, 2, 6), ("one", 1.0, 3, 3, 1)):
        # a and b: one sweep's configs, their runs taken in turns (the id `bench --threads 1,2` gives them)
        (f := tmp_path / f"{name}.json").write_text(json.dumps({**_runs_result(med, seed, threads, k), "interleaved": "s1"}))
        files.append(str(f))
    capsys.readouterr()
    assert main(["compare", "--json", str(tmp_path / "c.json"), files[0], files[1]]) == 0
    (c,) = json.loads((tmp_path / "c.json").read_text())
    assert c["runs"] == [6, 6] and c["equivalent"] and c["verdict"].startswith("no meaningful difference"), c
    assert main(["compare", "--min-effect", "0", "--json", str(tmp_path / "c0.json"), files[0], files[1]]) == 0
    (c0,) = json.loads((tmp_path / "c0.json").read_text())
    assert not c0["equivalent"] and not c0["verdict"].startswith("no meaningful"), c0
    capsys.readouterr()
    assert main(["compare", files[0], files[2]]) == 0  # 6 runs against one
    assert "one run per side: this CI sees only the noise within each run" in capsys.readouterr().out


def test_wheelhouse_names_unknown_platforms_and_this_one(tmp_path, capsys):
    from edgekit.cli import wheelhouse

    assert main(["wheelhouse", str(tmp_path / "w"), "--platform", "linux-x86_64,amiga-68k"]) == 2
    err = capsys.readouterr().err
    assert "unknown platform amiga-68k" in err and "windows-x86_64" in err, err
    assert wheelhouse.this_platform() in wheelhouse.PLATFORMS
    # the markers a Windows wheelhouse resolves with are Windows' (pip alone would use this machine's)
    from pip._vendor.packaging.markers import Marker

    env = {**wheelhouse.PLATFORMS["windows-x86_64"].env, "python_version": "3.11"}
    assert Marker('sys_platform == "win32" and platform_machine == "AMD64"').evaluate(env)
    assert not Marker('sys_platform != "win32"').evaluate(env)
