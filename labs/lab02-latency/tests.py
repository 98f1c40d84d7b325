"""Tests of Lab 2. No real time is measured: the harness runs on fakes built inside the student's
process (lab02_support), the statistics on simulated traces; the reference gives the expected values."""

import json
from pathlib import Path

import numpy as np

from edgekit.grading import call, case, close, equal, obj

TRACES = json.loads((Path(__file__).parent / "lab02_traces.json").read_text())["traces"]


def session(latencies, **kwargs):
    return obj("lab02_support:FakeSession", latencies_ms=latencies, **kwargs)


clock = obj("lab02_support:FakeClock")
rng = np.random.default_rng(3)


# -- q1: the harness -------------------------------------------------------------------------------
script = [30.0, 12.0, 5.0, 1.0, 1.2, 0.9, 1.1, 1.0]
case("q1", "3 warm-up runs, then 5 timed", call("measure", session(script), clock, warmup=3, runs=5),
     close(atol=1e-6), public=True)
case("q1", "no warm-up", call("measure", session([4.0, 2.0, 3.0]), clock, warmup=0, runs=3), close(atol=1e-6))
case("q1", "warm-up runs are run but not timed", call("measure", session([100.0, 100.0, 1.0, 2.0]), clock,
                                                     warmup=2, runs=2), close(atol=1e-6), weight=2)
many = [round(float(v), 3) for v in 5 + rng.exponential(0.5, 110)]
case("q1", "the defaults: 10 warm-up, 100 timed", call("measure", session(many), clock), close(atol=1e-6), weight=2)
case("q1", "a clock that has run for a day", call("measure", session([2.0, 3.0, 4.0], start_s=86400.0), clock,
                                                  warmup=1, runs=2), close(atol=1e-5))
case("q1", "one timed run", call("measure", session([9.0, 0.25]), clock, warmup=1, runs=1), close(atol=1e-6))

# -- q2: percentiles ---------------------------------------------------------------------------------
ten = [float(v) for v in range(1, 11)]
shuffled = [7.0, 1.5, 3.0, 9.5, 2.0, 4.0, 8.0, 6.5]
case("q2", "nearest rank: p90 of 1..10", call("percentile_nearest_rank", ten, 90), close(), public=True)
case("q2", "linear: p90 of 1..10", call("percentile_linear", ten, 90), close(rtol=1e-9), public=True)
for p in (0, 50, 100):
    case("q2", f"nearest rank: p{p} of unsorted samples", call("percentile_nearest_rank", shuffled, p), close())
    case("q2", f"linear: p{p} of unsorted samples", call("percentile_linear", shuffled, p), close(rtol=1e-9))
case("q2", "nearest rank: one sample", call("percentile_nearest_rank", [3.25], 99), close())
case("q2", "linear: one sample", call("percentile_linear", [3.25], 99), close())
case("q2", "nearest rank: p7 of 100 samples (multiply first)", call("percentile_nearest_rank",
                                                                    TRACES["steady"][:100], 7), close())
case("q2", "nearest rank: p99 of a long tail", call("percentile_nearest_rank", TRACES["long_tail"], 99), close(),
     weight=2)
case("q2", "linear: p99 of a long tail", call("percentile_linear", TRACES["long_tail"], 99), close(rtol=1e-9),
     weight=2)

# -- q3: describe ----------------------------------------------------------------------------------------
case("q3", "long_tail", call("describe", TRACES["long_tail"]), close(rtol=1e-9), public=True)
case("q3", "steady", call("describe", TRACES["steady"]), close(rtol=1e-9))
case("q3", "background_load", call("describe", TRACES["background_load"]), close(rtol=1e-9))
case("q3", "five samples, one slow", call("describe", [1.0, 2.0, 3.0, 4.0, 100.0]), close(rtol=1e-9), weight=2)

# -- q4: confidence interval of the median -----------------------------------------------------------------
case("q4", "steady (600 samples)", call("median_ci", TRACES["steady"]), close(), public=True)
case("q4", "long_tail", call("median_ci", TRACES["long_tail"]), close())
case("q4", "exactly 20 unsorted samples", call("median_ci", TRACES["background_load"][:20]), close(), weight=2)
case("q4", "19 samples: None (and 20: an interval)",
     lambda ns: [ns.median_ci(TRACES["steady"][:19]), ns.median_ci(TRACES["steady"][:20])], close(), weight=2)
case("q4", "1001 samples", call("median_ci", [round(float(v), 4) for v in rng.lognormal(1, 0.5, 1001)]), close())

# -- q5: flag a run ----------------------------------------------------------------------------------------
case("q5", "cold_start", call("flag_run", TRACES["cold_start"]), equal(), public=True)
for name in ("throttling", "background_load", "short"):
    case("q5", name, call("flag_run", TRACES[name]), equal())
for name in ("steady", "long_tail"):  # nothing to flag: asked with cold_start, so that an empty answer cannot pass
    case("q5", f"{name} (and cold_start)",
         lambda ns, n=name: [ns.flag_run(TRACES[n]), ns.flag_run(TRACES["cold_start"])], equal())
both = np.array(TRACES["throttling"])
both[::10] *= 4  # 10% spikes on top of throttling
case("q5", "throttling and spikes", call("flag_run", [float(v) for v in both]), equal(), weight=2)
five, six = [8.0] * 100, [8.0] * 100
for i in (5, 25, 45, 65, 85):  # spread out, so neither the first nor the last tenth is slow
    five[i] = six[i] = 30.0
six[50] = 30.0
case("q5", "exactly 5% spikes is not more than 5% (6% is)", lambda ns: [ns.flag_run(five), ns.flag_run(six)], equal())
case("q5", "6% spikes", call("flag_run", six), equal())
case("q5", "20 samples, slow start", call("flag_run", [20.0, 20.0] + [8.0] * 18), equal())
