"""Remove a folder a student's code may have filled: bounded, never recursive, never following links.

``shutil.rmtree`` recurses once per level (a 1500-level chain of folders raises RecursionError,
which ``ignore_errors`` does not catch) and holds a descriptor per level. Here the walk is an
explicit loop over one open directory at a time: names are resolved relative to that directory's
descriptor (so depth beyond ``PATH_MAX`` is fine), links are unlinked rather than followed, the
way back up is checked against the inode recorded on the way down (a folder moved meanwhile
stops the removal instead of leading it elsewhere), and a time budget bounds the whole. What it
cannot remove it leaves and reports; it never raises.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(d, "a", "b"))
>>> remove_tree(d).complete, os.path.exists(d)
(True, False)
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Removal:
    """What :func:`remove_tree` did: entries removed, and why anything is left."""

    path: str
    removed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.complete:
            return f"removed {self.path} ({self.removed} entries)"
        return f"could not fully remove {self.path} ({self.removed} entries removed): " + "; ".join(self.problems[:3])


@dataclass
class _Level:
    """One open folder on the way down: its name in its parent, its identity, subfolders still to visit."""

    name: str
    ident: tuple[int, int]
    todo: list[str]


def remove_tree(path: str | Path, budget_s: float = 30.0) -> Removal:
    """Delete ``path`` and everything under it, within ``budget_s`` seconds; see the module docstring."""
    path = Path(path)
    report = Removal(str(path))
    deadline = time.monotonic() + budget_s
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return report
    except OSError as exc:
        report.problems.append(f"cannot inspect it ({exc.strerror})")
        return report
    try:
        parent = os.open(path.parent, _DIR_FLAGS)
    except OSError as exc:
        report.problems.append(f"cannot open its parent folder ({exc.strerror})")
        return report
    try:
        if not stat.S_ISDIR(st.st_mode):  # a file or a link: the link itself goes, never its target
            _unlink(path.name, parent, report)
        else:
            _remove_dir(path.name, parent, report, deadline)
    finally:
        os.close(parent)
    return report


def _unlink(name: str, dir_fd: int, report: Removal) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
        report.removed += 1
    except PermissionError:  # a folder the student made read-only: make it writable, try once more
        try:
            os.fchmod(dir_fd, 0o700)
            os.unlink(name, dir_fd=dir_fd)
            report.removed += 1
        except OSError as exc:
            report.problems.append(f"{name}: {exc.strerror}")
    except FileNotFoundError:
        pass
    except OSError as exc:
        report.problems.append(f"{name}: {exc.strerror}")


def _scan(fd: int, report: Removal) -> list[str]:
    """Unlink every non-folder in the open folder ``fd``; return the names of its subfolders."""
    subdirs, others = [], []
    try:
        with os.scandir(fd) as entries:
            for e in entries:
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                (subdirs if is_dir else others).append(e.name)
    except OSError as exc:
        report.problems.append(f"cannot list a folder ({exc.strerror})")
    for name in others:
        _unlink(name, fd, report)
    return subdirs


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # a folder made unreadable (chmod 0): its owner may open it again
        os.chmod(name, 0o700, dir_fd=dir_fd)  # known to be a folder, not a link: it was listed as one
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _remove_dir(top: str, parent: int, report: Removal, deadline: float) -> None:
    try:
        fd = _open_dir(top, parent)
    except OSError as exc:
        report.problems.append(f"cannot open it ({exc.strerror})")
        return
    st = os.fstat(fd)
    levels = [_Level(top, (st.st_dev, st.st_ino), _scan(fd, report))]
    try:
        while levels:
            if time.monotonic() > deadline:
                report.problems.append(f"not finished within its time budget ({len(levels)} levels deep)")
                return
            here = levels[-1]
            if here.todo:  # down into the next subfolder
                name = here.todo.pop()
                try:
                    child = _open_dir(name, fd)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    report.problems.append(f"{name}: cannot open ({exc.strerror})")
                    continue
                os.close(fd)
                fd = child
                st = os.fstat(fd)
                levels.append(_Level(name, (st.st_dev, st.st_ino), _scan(fd, report)))
                continue
            # this folder is empty now: go up and remove it from its parent
            levels.pop()
            if not levels:
                os.close(fd)
                fd = -1
                _rmdir(here.name, parent, report)
                return
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            st = os.fstat(up)
            os.close(fd)
            fd = up
            if (st.st_dev, st.st_ino) != levels[-1].ident:  # moved while we were inside: stop here
                report.problems.append(f"a folder was moved during removal; stopped at {here.name!r}")
                return
            _rmdir(here.name, fd, report)
    except OSError as exc:
        report.problems.append(f"stopped: {exc.strerror or exc}")
    finally:
        if fd >= 0:
            os.close(fd)


def _rmdir(name: str, dir_fd: int, report: Removal) -> None:
    try:
        os.rmdir(name, dir_fd=dir_fd)
        report.removed += 1
    except PermissionError:
        try:
            os.fchmod(dir_fd, 0o700)
            os.rmdir(name, dir_fd=dir_fd)
            report.removed += 1
        except OSError as exc:
            report.problems.append(f"{name}: {exc.strerror}")
    except FileNotFoundError:
        pass
    except OSError as exc:  # not empty (something appeared), busy (a mount point): leave it
        report.problems.append(f"{name}: {exc.strerror}")


def clean_debris(budget_s: float) -> list[str]:
    """Scratch folders and cgroups left by a grader that was killed (SIGKILL cannot clean up).

    The folders hold what students' code wrote: removed without recursion, within a time budget
    (:func:`remove_tree`). Returns what could not be removed.
    """
    import re
    import tempfile

    from .cgroups import alive

    problems = []
    deadline = time.monotonic() + budget_s
    for d in Path(tempfile.gettempdir()).glob("edgekit-grade-*"):
        m = re.match(r"edgekit-grade-(\d+)-", d.name)
        if m and not alive(int(m.group(1))):
            removal = remove_tree(d, max(1.0, deadline - time.monotonic()))
            if not removal.complete:
                problems.append(f"debris of an earlier run: {removal}")
    from .sandbox import CGROUP_PIDS

    for g in (CGROUP_PIDS / "edgekit").glob("*") if (CGROUP_PIDS / "edgekit").is_dir() else []:
        m = re.fullmatch(r"(\d{1,10})-[0-9a-f]{8}", g.name)  # "<judge pid>-<random>" (cgroups.create)
        if m and not alive(int(m.group(1))):  # a live grader's group may be empty for a moment: not ours to take
            try:
                g.rmdir()  # only empty groups go
            except OSError:
                pass
    return problems
