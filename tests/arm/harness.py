"""Host side of the emulated aarch64 check: the cached Debian arm64 rootfs, the cached aarch64
wheels, and running ``guest_check.py`` under ``qemu-aarch64-static`` as a Cortex-A72 (Pi 4) or a
Cortex-A76 (Pi 5). Standard library only.

    python tests/arm/harness.py build              # what setup.sh runs (needs root for debootstrap)
    python tests/arm/harness.py status             # where the caches are; what is missing
    python tests/arm/harness.py run cortex-a76     # one guest check by hand; prints its JSON

The caches live in ``$EDGEKIT_ARM_CACHE`` (default ``~/.cache/edgekit-arm``), each in a folder
named by a hash of what goes in it, so a changed package list or pin rebuilds it:

- ``rootfs-KEY``: a first-stage-only ``debootstrap --foreign`` of Debian 12 (Python 3.11, like
  Raspberry Pi OS bookworm) with every downloaded .deb unpacked by ``dpkg -x``: no arm64 code
  runs, so no chroot, binfmt_misc or mounts are needed;
- ``aarch64-KEY``: edgekit's dependencies as aarch64 wheels installed by the host's pip into
  ``packages/``, plus ``build/``: the host wheels that build edgekit's own wheel offline.

Traps (see README.md): ``import onnxruntime`` segfaults unless the guest sees an ARM-style
``/proc/cpuinfo``; qemu-user cannot ``exec`` an aarch64 program without binfmt_misc, so the
guest's ``sys.executable`` is ``guest-python``, a host shell script that starts qemu again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECIPE = 1  # bump when the way the caches are built changes: every cache is rebuilt
SUITE = "bookworm"  # Debian 12, the base of Raspberry Pi OS bookworm: Python 3.11.2 on both
PYTHON = "3.11"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# python3, and the system libraries opencv-python (edgekit's real dependency, not -headless)
# loads: libGL, libglib/libgthread, libSM, libICE, libX11, libXext, libxcb.
ROOTFS_PACKAGES = ("python3", "libgl1", "libglib2.0-0", "libsm6", "libice6", "libx11-6",
                   "libxext6", "libxcb1")
# Every manylinux tag glibc 2.36 (Debian 12) accepts, as pip on a Pi with bookworm would.
PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{n}_aarch64" for n in range(17, 37)))
CONSTRAINTS = HERE / "constraints.txt"
SHIM = HERE / "guest-python"
GUEST_SCRIPT = HERE / "guest_check.py"
# qemu -cpu name -> (the cpuinfo file the guest sees, the core edgekit must report, the board)
CPUS = {
    "cortex-a72": (HERE / "cpuinfo-cortex-a72", "Cortex-A72", "Raspberry Pi 4"),
    "cortex-a76": (HERE / "cpuinfo-cortex-a76", "Cortex-A76", "Raspberry Pi 5"),
}
MARK = "EDGEKIT-ARM-RESULT "  # the guest prints its JSON on one line after this mark
GUEST_TIMEOUT_S = float(os.environ.get("EDGEKIT_ARM_TIMEOUT", "240"))


class HarnessError(RuntimeError):
    """Something the check needs is missing or broke; the message says what to do."""


# --------------------------------------------------------------------------- where, and keys

def cache_root() -> Path:
    return Path(os.environ.get("EDGEKIT_ARM_CACHE") or Path.home() / ".cache" / "edgekit-arm")


def _pyproject() -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # Python 3.10: edgekit depends on tomli there
        import tomli as tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def requirements() -> list[str]:
    """edgekit's core dependencies, as pyproject.toml states them."""
    return list(_pyproject()["project"]["dependencies"])


def _key(inputs: dict) -> str:
    canon = json.dumps({"recipe": RECIPE, **inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]


@lru_cache(maxsize=None)  # once per process: a checkout edited mid-run cannot split a run
def rootfs_dir() -> Path:
    return cache_root() / ("rootfs-" + _key({"suite": SUITE, "arch": "arm64", "variant": "minbase",
                                             "packages": ROOTFS_PACKAGES}))


@lru_cache(maxsize=None)
def packages_dir() -> Path:
    """The cached ``aarch64-KEY`` folder: ``packages/`` (aarch64 wheels installed) and ``build/``."""
    pins = [ln.strip() for ln in CONSTRAINTS.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]
    return cache_root() / ("aarch64-" + _key({
        "requirements": requirements(), "pins": pins, "platforms": PLATFORMS, "python": PYTHON,
        "build": _pyproject()["build-system"]["requires"]}))


def qemu() -> str | None:
    return shutil.which("qemu-aarch64-static")


def missing() -> list[str]:
    """What the guest check needs and this machine lacks (empty when ready)."""
    out = []
    if not qemu():
        out.append("qemu-aarch64-static (apt-get install qemu-user-static)")
    if not os.access(SHIM, os.X_OK):
        out.append(f"an executable {SHIM} (chmod +x it)")
    if not (rootfs_dir() / "usr/bin/python3.11").is_file():
        out.append(f"the arm64 rootfs {rootfs_dir()}")
    if not (packages_dir() / "complete.json").is_file():
        out.append(f"the aarch64 packages {packages_dir()} (built for the current "
                   "pyproject.toml dependencies and tests/arm/constraints.txt)")
    return out


# --------------------------------------------------------------------------- building (setup)

def _run(cmd: list, **kw) -> None:
    print("harness: $ " + " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    rc = subprocess.run([str(c) for c in cmd], **kw).returncode
    if rc:
        raise HarnessError(f"command failed with exit code {rc}: {' '.join(map(str, cmd))}")


def _apt_sources() -> list[tuple[str, list[str]]]:
    """``(URI, suites)`` of every enabled ``deb`` source, one-line and deb822 formats."""
    apt = Path("/etc/apt")
    found = []
    for f in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        for line in (f.read_text(errors="replace").splitlines() if f.is_file() else []):
            words = line.split("#", 1)[0].split()
            if words[:1] == ["deb"]:
                words = [w for w in words[1:] if not w.startswith("[") and not w.endswith("]")]
                if len(words) >= 2:
                    found.append((words[0], [words[1]]))
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        for para in f.read_text(errors="replace").split("\n\n"):
            kv = {}
            for line in para.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    k, _, v = line.partition(":")
                    kv[k.strip().lower()] = v.split()
            if "deb" in kv.get("types", []) and kv.get("enabled", ["yes"]) != ["no"]:
                found += [(uri, kv.get("suites", [])) for uri in kv.get("uris", [])]
    return found


def mirror() -> str:
    """``$EDGEKIT_ARM_MIRROR``, else the configured apt source of Debian's ``bookworm`` suite."""
    if os.environ.get("EDGEKIT_ARM_MIRROR"):
        return os.environ["EDGEKIT_ARM_MIRROR"]
    for uri, suites in _apt_sources():
        if SUITE in suites and uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
    print(f"harness: no apt source for Debian {SUITE} configured; using {DEFAULT_MIRROR}")
    return DEFAULT_MIRROR


def _python311() -> str | None:
    """A host Python 3.11: its .pyc files are valid for the guest's 3.11 (same magic number)."""
    return sys.executable if sys.version_info[:2] == (3, 11) else shutil.which("python3.11")


def _precompile(folder: Path, guest_path: str | None = None) -> None:
    """Byte-compile on the host (seconds) what the guest would compile emulated (much slower),
    so the guest can run with PYTHONDONTWRITEBYTECODE and never write into the caches."""
    py = _python311()
    if not py:
        print(f"harness: no host python3.11: {folder} is not precompiled (slower guest imports)")
        return
    cmd = [py, "-m", "compileall", "-qq", "-j", "0", *(["-d", guest_path] if guest_path else []), folder]
    subprocess.run([str(c) for c in cmd])  # some test data files never compile: not an error


def _fresh(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def build_rootfs() -> Path:
    """Debian arm64 with python3.11, unpacked without running arm64 code; cached by key."""
    final = rootfs_dir()
    if (final / "usr/bin/python3.11").is_file():
        print(f"harness: rootfs up to date: {final}")
        return final
    if not shutil.which("debootstrap"):
        raise HarnessError("debootstrap is missing: apt-get install debootstrap (setup.sh does)")
    tmp, sudo = _fresh(final), os.environ.get("EDGEKIT_ARM_SUDO", "").split()
    start = time.monotonic()
    _run([*sudo, "debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
          "--include=" + ",".join(ROOTFS_PACKAGES), SUITE, tmp, mirror()], stdout=subprocess.DEVNULL)
    if sudo:  # the rest runs as this user, who owns the cache
        _run([*sudo, "chown", "-R", f"{os.getuid()}:{os.getgid()}", tmp])
    # First stage only unpacks the base; unpack every package it downloaded (python3 included).
    debs = sorted((tmp / "var/cache/apt/archives").glob("*.deb"))
    print(f"harness: unpacking {len(debs)} packages with dpkg -x", flush=True)
    for deb in debs:
        if subprocess.run(["dpkg", "-x", str(deb), str(tmp)]).returncode:
            raise HarnessError(f"dpkg -x {deb} {tmp} failed")
        deb.unlink()
    if not (tmp / "usr/bin/python3.11").is_file():
        raise HarnessError(f"debootstrap ran but {tmp}/usr/bin/python3.11 is missing")
    _precompile(tmp / "usr/lib/python3.11", "/usr/lib/python3.11")
    tmp.rename(final)
    print(f"harness: rootfs built in {time.monotonic() - start:.0f} s ({len(debs)} packages): {final}")
    return final


def build_packages() -> Path:
    """edgekit's dependencies as aarch64 wheels (host pip, never emulated), and the host wheels
    that build edgekit's own wheel without a network at test time; cached by key."""
    final = packages_dir()
    if (final / "complete.json").is_file():
        print(f"harness: aarch64 packages up to date: {final}")
        return final
    tmp, start = _fresh(final), time.monotonic()
    pip = [sys.executable, "-m", "pip"]
    tags = [a for p in PLATFORMS for a in ("--platform", p)]
    reqs = requirements()
    _run([*pip, "install", "--quiet", "--no-compile", "--target", tmp / "packages",
          "--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp",
          "--abi", "cp" + PYTHON.replace(".", ""), *tags, "-c", CONSTRAINTS, *reqs])
    shutil.rmtree(tmp / "packages" / "bin", ignore_errors=True)  # host shebangs: useless there
    _run([*pip, "download", "--quiet", "--dest", tmp / "build", *_pyproject()["build-system"]["requires"]])
    _precompile(tmp / "packages")
    versions = sorted(p.name.removesuffix(".dist-info") for p in (tmp / "packages").glob("*.dist-info"))
    (tmp / "complete.json").write_text(json.dumps({"requirements": reqs, "installed": versions}, indent=1))
    tmp.rename(final)
    print(f"harness: aarch64 packages built in {time.monotonic() - start:.0f} s: {', '.join(versions)}")
    return final


def prune() -> None:
    """Remove caches of other keys (older pins, package lists) and leftovers of broken builds."""
    keep = {rootfs_dir().name, packages_dir().name}
    stale = [d for d in sorted(cache_root().glob("*"))
             if d.name.startswith(("rootfs-", "aarch64-")) and d.name not in keep]
    for view in (cache_root() / "views").glob("*"):  # left by killed runs; a live run's is young
        try:
            if time.time() - view.stat().st_mtime > 3600:
                stale.append(view)
        except OSError:  # removed meanwhile by its own run
            pass
    for d in stale:
        print(f"harness: removing {d}")
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- running a guest

def install_edgekit(dest: Path) -> Path:
    """Build edgekit's wheel from this checkout and install it (no dependencies) into
    ``dest/site``; offline: the build backend comes from the cached ``build/`` wheels."""
    build, pip = packages_dir() / "build", [sys.executable, "-m", "pip"]
    offline = ["--no-index", "--find-links", str(build)]
    quiet = dict(stdout=subprocess.DEVNULL)
    _run([*pip, "wheel", "--quiet", "--no-deps", *offline, "-w", dest / "wheel", REPO], **quiet)
    wheels = sorted((dest / "wheel").glob("edgekit-*.whl"))
    if len(wheels) != 1:
        raise HarnessError(f"expected one edgekit wheel in {dest / 'wheel'}, got {wheels}")
    _run([*pip, "install", "--quiet", "--no-deps", "--no-index", "--target", dest / "site", wheels[0]], **quiet)
    return dest / "site"


def cpuinfo(cpu: str) -> str:
    """An ARM /proc/cpuinfo: the model's block once per host CPU this process may use. onnxruntime
    sizes its thread pool from it; more blocks than host CPUs make it pin threads to CPUs that
    do not exist (harmless errors), fewer waste cores."""
    block = CPUS[cpu][0].read_text().strip().splitlines()
    assert block[0].startswith("processor"), f"{CPUS[cpu][0]} must start with 'processor'"
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return "".join("\n".join([f"processor\t: {i}", *block[1:]]) + "\n\n" for i in cpus)


def make_view(cpu: str, parent: Path) -> Path:
    """A private copy of the cached rootfs, made of hard links (a fraction of a second), with
    this CPU model's ``proc/cpuinfo``: qemu ``-L`` shows the guest ``ROOTFS/proc/cpuinfo`` in
    place of the host's. Separate views let runs (and CPU models) never share that file."""
    view = parent / f"rootfs-{cpu}"

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:  # another filesystem, or protected_hardlinks: copy instead
            shutil.copy2(src, dst)

    shutil.copytree(rootfs_dir(), view, symlinks=True, copy_function=link)
    (view / "proc").mkdir(exist_ok=True)
    (view / "proc" / "cpuinfo").write_text(cpuinfo(cpu))
    return view


def guest_env(cpu: str, view: Path, site: Path, home: Path) -> dict[str, str]:
    """A clean environment: nothing of the host's Python or edgekit settings leaks in."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C.UTF-8", "TMPDIR": str(home),
        "PYTHONPATH": os.pathsep.join([str(site), str(packages_dir() / "packages")]),
        "PYTHONDONTWRITEBYTECODE": "1",  # never write into the shared caches
        "EDGEKIT_CACHE": str(home / "edgekit-cache"),
        # qemu-user reads these, and so do the qemu processes guest-python starts for children
        "QEMU_CPU": cpu, "QEMU_LD_PREFIX": str(view), "QEMU_ARGV0": str(SHIM),
        "EDGEKIT_ARM_QEMU": qemu() or "qemu-aarch64-static",
    }


def _die_with_parent():  # in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_guest(cpu: str, site: Path, work: Path, timeout: float = GUEST_TIMEOUT_S) -> dict:
    """Run ``guest_check.py`` emulated as ``cpu``; return its JSON plus ``host_wall_s``.

    The guest and everything it starts share one process group, killed whatever happens, so
    no qemu process outlives the call.
    """
    if cpu not in CPUS:
        raise HarnessError(f"unknown CPU model {cpu!r}; expected one of {', '.join(CPUS)}")
    views = cache_root() / "views"  # same filesystem as the rootfs: hard links work
    views.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{cpu}-", dir=views))
    home = work / f"home-{cpu}"
    home.mkdir(parents=True, exist_ok=True)
    try:
        view = make_view(cpu, scratch)
        start = time.monotonic()
        proc = subprocess.Popen([str(SHIM), str(GUEST_SCRIPT)], cwd=home,
                                env=guest_env(cpu, view, site, home), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace",
                                start_new_session=True, preexec_fn=_die_with_parent)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc)
            out, err = proc.communicate()
            raise HarnessError(f"the {cpu} guest check gave no answer within {timeout:.0f} s "
                               f"(EDGEKIT_ARM_TIMEOUT raises it); its stderr ends:\n{err[-2000:]}")
        finally:
            _killpg(proc)
        wall = time.monotonic() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    marked = [ln for ln in out.splitlines() if ln.startswith(MARK)]
    if not marked:
        how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exit code {proc.returncode}")
        raise HarnessError(f"the {cpu} guest check printed no result ({how})"
                           f"; see 'Traps' in tests/arm/README.md (a SIGSEGV in `import onnxruntime`"
                           f" means the guest saw no ARM /proc/cpuinfo); stdout ends:\n{out[-1500:]}"
                           f"\nstderr ends:\n{err[-2500:]}")
    result = json.loads(marked[-1][len(MARK):])
    result["host_wall_s"] = round(wall, 2)
    result["guest_exit_code"] = proc.returncode
    result["guest_stderr_tail"] = err[-1500:]
    return result


def _killpg(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "status"
    try:
        if what == "build":
            build_rootfs()
            build_packages()
            prune()
            gaps = missing()
            if gaps:
                raise HarnessError("built, yet still missing: " + "; ".join(gaps))
        elif what == "status":
            print(f"cache: {cache_root()}\nrootfs: {rootfs_dir()}\npackages: {packages_dir()}")
            print("missing: " + ("; ".join(missing()) or "nothing"))
        elif what == "run" and len(argv) == 2:
            gaps = missing()
            if gaps:
                raise HarnessError("missing " + "; ".join(gaps) + "; run `bash tests/arm/setup.sh`")
            with tempfile.TemporaryDirectory() as tmp:
                site = install_edgekit(Path(tmp))
                print(json.dumps(run_guest(argv[1], site, Path(tmp)), indent=1))
        else:
            print(__doc__)
            return 2
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
