"""``edgekit wheelhouse DIR``: every wheel a lab machine needs, fetched once for a whole classroom.

One machine with internet runs it in a clone of this repository; the folder then goes to the
students (USB stick, a shared drive) and each installs with no index at all::

    pip install --no-index --find-links DIR -e ".[lab]"

It shells out to ``pip download`` once per platform and Python version, for this checkout's
``.[lab]`` (edgekit's dependencies and the ``lab`` extra) and its build backend (``pip install -e``
builds edgekit, offline too). pip evaluates environment markers (``sys_platform == "win32"``) on the
machine that runs it, not on ``--platform`` (pypa/pip#11664): a Windows wheelhouse fetched on Linux
would lack ``pywinpty`` and ``colorama``. So the child pip runs with its marker environment set to
the target's, the way pex does for its ``--platform`` resolves.

>>> PLATFORMS["windows-x86_64"].env["sys_platform"]
'win32'
"""

from __future__ import annotations

import json
import os
import platform as _platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigError
from .._paths import PACKAGE


@dataclass(frozen=True)
class Target:
    tags: tuple[str, ...]  # pip --platform values (wheel platform tags)
    env: dict  # PEP 508 marker values of that platform


def _linux(arch: str) -> Target:  # glibc 2.28 and older wheels: Debian 10+, Ubuntu 20.04+, Raspberry Pi OS 64-bit
    tags = tuple(f"manylinux_2_{v}_{arch}" for v in (28, 27, 26, 17)) + (f"manylinux2014_{arch}",)
    return Target(tags, {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                         "platform_machine": arch})


PLATFORMS = {
    "linux-x86_64": _linux("x86_64"),
    "linux-aarch64": _linux("aarch64"),  # Raspberry Pi 4/5 (64-bit OS), Jetson
    "windows-x86_64": Target(("win_amd64",), {"sys_platform": "win32", "platform_system": "Windows",
                                              "os_name": "nt", "platform_machine": "AMD64"}),
    # pip widens a macOS tag to every older release and universal2
    "macos-arm64": Target(("macosx_14_0_arm64",), {"sys_platform": "darwin", "platform_system": "Darwin",
                                                   "os_name": "posix", "platform_machine": "arm64"}),
    "macos-x86_64": Target(("macosx_14_0_x86_64",), {"sys_platform": "darwin", "platform_system": "Darwin",
                                                     "os_name": "posix", "platform_machine": "x86_64"}),
}
DEFAULT = ("linux-x86_64", "linux-aarch64", "windows-x86_64", "macos-arm64")

# The child pip: its marker environment becomes the target's, then pip's own main() runs.
_CHILD = """import json, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv[1])
native = markers.default_environment
markers.default_environment = lambda: {**native(), **target}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@dataclass
class Fetched:
    platform: str
    python: str
    wheels: int
    seconds: float


def this_platform() -> str:
    """The PLATFORMS name of this machine, or ConfigError."""
    system, machine = _platform.system(), _platform.machine().lower()
    name = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}.get(system, system.lower())
    name += "-" + {"amd64": "x86_64", "arm64": "arm64" if system == "Darwin" else "aarch64"}.get(machine, machine)
    if name not in PLATFORMS:
        raise ConfigError(f"this machine ({system} {machine}) is not one of {', '.join(PLATFORMS)}: "
                          "name the students' platforms with --platform")
    return name


def _checkout() -> Path:
    root = PACKAGE.parent
    if not (root / "pyproject.toml").is_file():
        raise ConfigError(f"edgekit wheelhouse reads the lab extra from a clone's pyproject.toml; {root} has none: "
                          "run it inside the clone the students use (git clone ..., cd edgekit)")
    return root


def _build_requires(root: Path) -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    requires = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["build-system"]["requires"]
    return [*requires, "editables"]  # hatchling asks for it to build an editable install (pip install -e)


def fetch(dest: Path, platforms=DEFAULT, pythons=None, extras="lab", quiet=True) -> list[Fetched]:
    """``pip download`` of this checkout's ``.[extras]`` and its build backend into ``dest``, for
    every platform and Python version (``pythons``: default this Python's ``3.X``)."""
    root, dest = _checkout(), Path(dest)
    pythons = list(pythons or [f"{sys.version_info[0]}.{sys.version_info[1]}"])
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise ConfigError(f"unknown platform {', '.join(unknown)}: expected some of {', '.join(PLATFORMS)}")
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for name in platforms:
        target = PLATFORMS[name]
        for python in pythons:
            env = {**target.env, "python_version": python, "implementation_name": "cpython",
                   "platform_python_implementation": "CPython"}
            cmd = [sys.executable, "-c", _CHILD, json.dumps(env), "download", "--dest", str(dest),
                   "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
                   *(a for tag in target.tags for a in ("--platform", tag)),
                   *(["--quiet"] if quiet else []), f"{root}[{extras}]", *_build_requires(root)]
            before, start = len(list(dest.glob("*.whl"))), time.monotonic()
            run = subprocess.run(cmd, check=False, capture_output=quiet, text=True)
            if run.returncode:
                tail = "\n".join(((run.stdout or "") + (run.stderr or "")).strip().splitlines()[-8:])
                raise ConfigError(f"pip download for {name}, Python {python} failed (exit {run.returncode}):\n{tail}\n"
                                  "a package without a wheel for that platform cannot go into a wheelhouse: "
                                  "drop that --platform, or see pip's message above")
            done.append(Fetched(name, python, len(list(dest.glob("*.whl"))) - before, time.monotonic() - start))
    return done


def size_mb(dest: Path) -> float:
    return sum(p.stat().st_size for p in Path(dest).glob("*.whl")) / 1e6


def cmd_wheelhouse(args) -> int:
    platforms = [p.strip() for arg in (args.platform or []) for p in arg.split(",") if p.strip()]
    if platforms == ["this"]:
        platforms = [this_platform()]
    pythons = [p.strip() for arg in (args.python or []) for p in arg.split(",") if p.strip()]
    done = fetch(Path(args.dir), platforms or DEFAULT, pythons or None, quiet=not args.verbose)
    for f in done:
        print(f"{f.platform:<15} Python {f.python}: {f.wheels} new wheels ({f.seconds:.0f} s)")
    total = len(list(Path(args.dir).glob("*.whl")))
    print(f"{args.dir}: {total} wheels, {size_mb(Path(args.dir)):.0f} MB. Students install with:\n"
          f'  pip install --no-index --find-links {os.fspath(args.dir)} -e ".[lab]"')
    return 0


def register(sub) -> None:
    s = sub.add_parser("wheelhouse", help="instructors: fetch every wheel the labs need once, for offline installs",
                       description="Download every wheel a lab machine needs (edgekit's dependencies, the lab "
                       "extra, the build backend) into DIR, for each platform; students then install with "
                       'pip install --no-index --find-links DIR -e ".[lab]". Run it in a clone of edgekit.')
    s.add_argument("dir", help="folder for the wheels (created; wheels already there are kept)")
    s.add_argument("--platform", action="append", metavar="NAME",
                   help=f"one of {', '.join(PLATFORMS)} or 'this' (repeat or comma-separate; "
                        f"default: {', '.join(DEFAULT)})")
    s.add_argument("--python", action="append", metavar="X.Y",
                   help="the students' Python version(s) (default: this Python's)")
    s.add_argument("--verbose", action="store_true", help="show pip's output")
    s.set_defaults(func=cmd_wheelhouse)
