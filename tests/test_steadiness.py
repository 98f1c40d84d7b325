"""edgekit.perf.steadiness: a run whose speed moved, with no sensor to say why, is suspect."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.perf.steadiness import UNSTEADY, assess_steadiness
from edgekit.perf.verdict import judge, verdict


def _run(n: int, sd: float, seed: int, slow_from: float | None = None, factor: float = 2.0):
    """n samples of ~5 ms, lognormal spread ``sd``; from the fraction ``slow_from`` on, ``factor`` slower
    (the host's other tenants took the CPU: a shift no in-guest sensor sees)."""
    rng = np.random.default_rng(seed)
    ms = 5.0 * rng.lognormal(0, sd, n)
    if slow_from is not None:
        ms[int(slow_from * n):] *= factor
    starts = np.cumsum(np.concatenate([[0.0], ms[:-1] / 1e3]))
    return starts.tolist(), ms.tolist()


def test_a_speed_that_halves_mid_run_is_suspect_and_the_verdict_says_so():
    starts, ms = _run(400, 0.1, 0, slow_from=0.5)
    s = assess_steadiness(starts, ms)
    parts = [float(np.median(p)) for p in np.array_split(np.asarray(ms), 5)]
    assert s.part_p50_ms == pytest.approx(parts) and s.range == pytest.approx(max(parts) / min(parts))
    assert s.is_suspect and s.reasons[0].startswith(UNSTEADY) and "--ab" in s.reasons[0]
    rec = judge([], starts, ms)  # no sampler ticks at all: the samples alone tell
    assert rec["is_suspect"] and rec["kinds"] == [UNSTEADY] and verdict(rec) == f"suspect: {UNSTEADY}"


@pytest.mark.parametrize("sd", [0.1, 0.3])
def test_a_steady_machine_is_never_called_unsteady(sd):
    """A default repeated run has ~100 samples: 300 steady runs, heavy-tailed too, none flagged."""
    flagged = sum(assess_steadiness(*_run(100, sd, seed)).is_suspect for seed in range(300))
    assert flagged == 0


def test_a_20_percent_step_is_within_the_rule_and_a_40_percent_one_is_not():
    assert not assess_steadiness(*_run(400, 0.1, 1, slow_from=0.5, factor=1.2)).is_suspect
    assert assess_steadiness(*_run(400, 0.1, 1, slow_from=0.5, factor=1.4)).is_suspect


def test_marked_samples_are_left_to_the_burst_rule():
    starts, ms = _run(400, 0.1, 2, slow_from=0.6)
    marked = [i >= 240 for i in range(400)]  # a sensor saw those: they are explained, not unsteady
    assert assess_steadiness(starts, ms).is_suspect and not assess_steadiness(starts, ms, marked).is_suspect


def test_too_few_samples_are_not_judged():
    s = assess_steadiness(*_run(99, 0.1, 3, slow_from=0.5))
    assert s.range is None and not s.is_suspect and s.part_p50_ms == []
