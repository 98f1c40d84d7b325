"""The fence's caps and filter, module by module: cgroups (v1 live here, v2 on a recorded layout),
the seccomp program (run through a small BPF interpreter, then installed for real), refusal."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

import pytest

from edgekit.grading import cgroups, seccomp_filter

LINUX = sys.platform.startswith("linux")


# -- cgroup v2, on a recorded layout (not exercised live on this v1 machine) ------------------------

def _v2_tree(root: Path) -> Path:
    """The files the kernel shows at the top of a unified hierarchy (Debian 12, as root)."""
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "cgroup.procs").write_text("1\n")
    return root


def test_v2_writes_memory_pids_and_cpu_limits_and_delegates_the_controllers(tmp_path):
    root = _v2_tree(tmp_path / "cgroup")
    assert cgroups.detect(root) == "v2"
    g = cgroups.create(512, 64, root)
    assert g is not None and g.version == "v2" and len(g.dirs) == 1, g
    leaf = g.dirs[0]
    assert leaf.parent == root / "edgekit" and leaf.name.startswith(f"{os.getpid()}-"), leaf
    files = {p.name: p.read_text() for p in leaf.iterdir()}
    assert files == {"memory.max": str(512 * 2**20), "pids.max": "64", "cpu.weight": "100"}, files
    for parent in (root, root / "edgekit"):  # a child's controller files exist only once the parent delegates
        assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert g.controllers == {"memory": True, "pids": True, "cpu": True, "devices": False}, g.controllers
    assert g.join(4242) and (leaf / "cgroup.procs").read_text() == "4242"


def test_v2_caps_swap_when_the_host_has_swap_accounting(tmp_path, monkeypatch):
    root = _v2_tree(tmp_path / "cgroup")
    real_mkdir = Path.mkdir

    def mkdir_like_the_kernel(self, *a, **k):  # the kernel fills a new group with its control files
        real_mkdir(self, *a, **k)
        if self.parent.name == "edgekit":
            (self / "memory.swap.max").write_text("max\n")

    monkeypatch.setattr(Path, "mkdir", mkdir_like_the_kernel)
    g = cgroups.create(256, 16, root)
    assert (g.dirs[0] / "memory.swap.max").read_text() == "0"


def test_v1_writes_a_group_per_controller_with_devices_denied(tmp_path):
    root = tmp_path / "cgroup"
    for ctrl in cgroups.V1_CONTROLLERS:
        (root / ctrl).mkdir(parents=True)
    assert cgroups.detect(root) == "v1"
    g = cgroups.create(1024, 32, root)
    got = {d.parent.parent.name: {p.name: p.read_text() for p in d.iterdir()} for d in g.dirs}
    assert got["memory"] == {"memory.limit_in_bytes": str(2**30)}, got
    assert got["pids"] == {"pids.max": "32"} and got["cpu"] == {"cpu.shares": "1024"}, got
    assert got["devices"]["devices.deny"] == "a", got  # then the five character devices, one write each


def test_stale_groups_of_dead_judges_are_removed_live_ones_kept(tmp_path):
    root = _v2_tree(tmp_path / "cgroup")
    dead = root / "edgekit" / "999999999-deadbeef"  # no such pid
    live = root / "edgekit" / f"{os.getpid()}-cafecafe"
    dead.mkdir(parents=True)
    live.mkdir()
    cgroups.create(64, 8, root)
    assert not dead.exists() and live.exists()


def test_no_cgroup_refuses_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "ROOT", tmp_path / "nothing")
    assert cgroups.detect(tmp_path / "nothing") == ""
    with pytest.raises(cgroups.CgroupError, match="--unsafe-no-cgroups"):
        cgroups.require()


@pytest.mark.skipif(not (LINUX and os.geteuid() == 0 and cgroups.detect() == "v1"), reason="live v1 cgroups need root on a v1 host")
def test_v1_live_group_holds_a_process_and_is_removed():
    g = cgroups.create(256, 16)
    assert g is not None and g.controllers == {"memory": True, "pids": True, "cpu": True, "devices": True}, g
    pid = os.fork()
    if pid == 0:
        os._exit(0 if g.join() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    mem = next(d for d in g.dirs if d.parts[-3] == "memory")
    assert int((mem / "memory.limit_in_bytes").read_text()) == 256 * 2**20
    g.remove()
    assert not any(d.exists() for d in g.dirs)


@pytest.mark.skipif(not (LINUX and os.geteuid() == 0 and cgroups.detect() == "v1"), reason="live v1 cgroups need root on a v1 host")
def test_debris_cleaning_takes_a_dead_judges_group_not_a_live_graders_empty_one():
    """A grader starting next to another one must not remove the group it just made and has yet to join."""
    from edgekit.grading.cleanup import clean_debris

    live = cgroups.create(256, 16)  # named after this process: alive, and empty until a process joins
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # a judge that is gone
    dead = cgroups.ROOT / "pids" / "edgekit" / f"{pid}-0badc0de"
    dead.mkdir()
    try:
        clean_debris(30.0)
        assert all(d.is_dir() for d in live.dirs), live.dirs
        assert not dead.exists()
    finally:
        live.remove()
        if dead.exists():
            dead.rmdir()


# -- seccomp: the program through a BPF interpreter, then live ------------------------------------

def _run_bpf(prog, nr: int, arch: int, arg0: int = 0) -> int:
    data = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF}
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == 0x20:
            acc = data[k]
        elif code == 0x06:
            return k
        else:
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if hit else jf
        pc += 1


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_filter_denies_what_it_lists_and_allows_the_rest(arch):
    prog, col, audit = seccomp_filter.program(arch), 0 if arch == "x86_64" else 1, seccomp_filter.AUDIT_ARCH[arch]
    eperm, allow = 0x00050000 | errno.EPERM, 0x7FFF0000
    for name, nrs in seccomp_filter.DENIED.items():
        if nrs[col] is not None:
            assert _run_bpf(prog, nrs[col], audit) == eperm, name
    for nr in (0, 1, 3, 9, 60, 63, 64, 93, 172 if col else 39):  # read, write, close, mmap, exit...: allowed
        if nr not in {v[col] for v in seccomp_filter.DENIED.values()}:
            assert _run_bpf(prog, nr, audit) == allow, nr
    clone = seccomp_filter.CLONE[col]
    assert _run_bpf(prog, clone, audit, arg0=17) == allow  # fork: SIGCHLD
    assert _run_bpf(prog, clone, audit, arg0=0x003D0F00) == allow  # a thread
    assert _run_bpf(prog, clone, audit, arg0=17 | 0x10000000) == eperm  # CLONE_NEWUSER
    assert _run_bpf(prog, seccomp_filter.CLONE3[col], audit) == 0x00050000 | errno.ENOSYS
    assert _run_bpf(prog, 0, 0x40000003) == eperm  # i386 int 0x80: another ABI
    if arch == "x86_64":
        assert _run_bpf(prog, 0x40000000 | 250, audit) == eperm  # x32


@pytest.mark.skipif(seccomp_filter.machine() not in seccomp_filter.AUDIT_ARCH or not LINUX, reason="x86_64/aarch64 Linux")
def test_the_filter_installed_refuses_keyctl_and_unshare_with_eperm_and_threads_still_start():
    import threading

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # no_new_privs
        out = [seccomp_filter.install() or "installed"]
        out.append(str(libc.syscall(seccomp_filter.DENIED["keyctl"][0 if seccomp_filter.machine() == "x86_64" else 1],
                                    0, -3, 0)) + f"/{ctypes.get_errno()}")
        out.append(str(libc.unshare(0x10000000)) + f"/{ctypes.get_errno()}")
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        out.append("thread")
        os.write(w, " ".join(out).encode())
        os._exit(0)
    os.close(w)
    got = os.read(r, 1000).decode()
    os.waitpid(pid, 0)
    assert got == f"installed -1/{errno.EPERM} -1/{errno.EPERM} thread", got


def test_grading_refuses_without_cgroups_unless_told_it_is_unsafe(tmp_path, monkeypatch):
    from edgekit.grading import grade_batch
    from edgekit.grading.lab import LabError

    if not LINUX:
        pytest.skip("the refusal is Linux-only (elsewhere grading warns: no namespaces at all)")
    monkeypatch.setattr(cgroups, "ROOT", tmp_path / "no-cgroupfs")
    with pytest.raises(cgroups.CgroupError, match="cannot cap a submission's memory and processes"):
        grade_batch(tmp_path / "no-lab", tmp_path / "subs", tmp_path / "out", progress=False)
    with pytest.raises(LabError):  # past the cgroup check: it goes on to load the (missing) lab
        grade_batch(tmp_path / "no-lab", tmp_path / "subs", tmp_path / "out", progress=False, unsafe_no_cgroups=True)


# -- edgekit doctor --grading ---------------------------------------------------------------------

def test_doctor_grading_rows_say_which_layer_is_missing_on_a_bare_report():
    from edgekit.grading import fence_check

    bare = {"fence": {"level": "rlimits-only", "cgroup": {}, "scratch": "host disk", "capabilities": 0,
                      "probe": {"uid": 501, "dev": ["null", "sda", "pts"], "environ_bytes": 120, "keyctl": "allowed"}}}
    rows = {name: present for name, present, *_ in fence_check.layers(bare)}
    assert not any(rows.values()), rows
    assert len(rows) == 12 and "cgroup memory" in rows and "minimal /dev" in rows, sorted(rows)


@pytest.mark.skipif(not (LINUX and os.geteuid() == 0 and cgroups.detect()), reason="the full fence needs root and cgroups")
def test_doctor_grading_finds_every_layer_here():
    from edgekit.grading import fence_check

    report = fence_check.run_probe()
    missing = [(name, detail) for name, present, detail, _, _ in fence_check.layers(report) if not present]
    if cgroups.detect() == "v2":  # v2 has no devices controller: the five-device /dev stands in
        missing = [m for m in missing if m[0] != "cgroup devices"]
    assert missing == [], f"{missing}\nreport: {report}"


def test_other_groups_under_edgekit_are_left_alone(tmp_path):
    """Only "<pid>-<8 hex>" names are ours: an older grader's all-digit uuid is not a pid."""
    root = _v2_tree(tmp_path / "cgroup")
    theirs = [root / "edgekit" / n for n in ("123456789012345", "3f2a9b1c0d4e", "999999999-notours")]
    for d in theirs:
        d.mkdir(parents=True)
    cgroups.create(64, 8, root)
    assert all(d.exists() for d in theirs)
