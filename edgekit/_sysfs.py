"""Reading Linux's /proc and /sys (real or a recorded copy under a root folder): never raises.

Other systems have no such files: every reader answers None or [] there, and callers degrade.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def read(path: Path) -> str | None:
    """A /proc or /sys file's text, stripped; None when missing, unreadable or switched off."""
    try:  # device-tree strings end in NUL, sysfs values in a newline
        return path.read_text(errors="replace").strip("\x00\n\t ") or None
    except (OSError, ValueError):  # missing, no permission, or a sensor that is switched off
        return None


def to_int(text: str | None, base: int = 10) -> int | None:
    """``int(text, base)``, or None for None, "" or garbage."""
    try:
        return int(text, base)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # None, "", or a sensor that answered garbage
        return None


def listdir(path: Path, pattern: str) -> list[str]:
    """Names in ``path`` matching ``pattern``, in numeric order (cpu9 before cpu10); [] when unreadable."""
    try:
        names = [n for n in os.listdir(path) if re.fullmatch(pattern, n)]
    except OSError:
        return []
    return sorted(names, key=lambda n: [int(d) for d in re.findall(r"\d+", n)])  # cpu10 > cpu9
