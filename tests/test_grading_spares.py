"""Spare student processes and the fence's allow-list: what makes a submission's start cheap.

A judge forks its spares before it reads any secret, as it forks the first student process, but
a spare fences itself only when a restart needs it (``StudentProcess.start(idle=True)``, woken by
``fenced()``). The allow-list of folders bound into the fence is made once in the grading worker
and found made in every process forked from it (``sandbox.allowed``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from edgekit.grading import cgroups, sandbox

LINUX = sys.platform.startswith("linux")

JUDGE = textwrap.dedent("""
    import json, os, tempfile, time
    from pathlib import Path
    from edgekit.grading.lab import Limits
    from edgekit.grading.process import StudentProcess, submission_group
    from edgekit.grading.sandbox import private_scratch

    limits = Limits(memory_mb=512, processes=64, disk_mb=16)
    scratch = Path(tempfile.mkdtemp(prefix="edgekit-spare-test-")).resolve()
    private_scratch(scratch, limits.disk_mb)  # in this judge's own mount namespace, as in grading
    group = submission_group(limits, True, True)
    never, woken = (StudentProcess.start(scratch, [], limits, True, True, group=group, idle=True) for _ in range(2))
    # a spare nobody needs: the judge lets go of it, and it leaves without ever fencing itself
    os.close(never.req)
    code = os.waitstatus_to_exitcode(never.wait())
    fence = woken.fenced(time.monotonic() + 30)
    in_group = str(woken.pid) in (group.dirs[0] / "cgroup.procs").read_text().split()
    woken.close(), never.close()
    group.remove()
    print(json.dumps({"never_exit": code, "level": fence.get("level"), "seccomp": fence.get("seccomp_mode"),
                      "in_group": in_group}))
""")


@pytest.mark.skipif(not (LINUX and os.geteuid() == 0 and cgroups.detect()), reason="the full fence needs root and cgroups")
def test_a_spare_fences_itself_only_when_woken():
    run = subprocess.run([sys.executable, "-c", JUDGE], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    # 0: it left at the closed pipe; a spare that had fenced itself would have failed to read a program (70)
    assert got["never_exit"] == 0, got
    assert got["level"] == "root" and got["seccomp"] == "2" and got["in_group"], got


@pytest.mark.skipif(not LINUX, reason="the fence's allow-list is Linux only")
def test_the_allow_list_is_made_again_when_a_package_is_imported_or_a_folder_made(tmp_path, monkeypatch):
    pkg = tmp_path / "ek_spare_test_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = sandbox.allowed()
    assert before == sandbox._allowed([]) and str(pkg) not in before
    monkeypatch.delitem(sys.modules, "ek_spare_test_pkg", raising=False)  # gone again after the test
    __import__("ek_spare_test_pkg")
    after = sandbox.allowed()
    assert str(pkg) in after and after == sandbox._allowed([])
    later = str(tmp_path / "zoo-cache")  # the zoo's cache folder, made after the list was
    assert later not in sandbox.allowed([later])
    os.mkdir(later)
    assert later in sandbox.allowed([later])
