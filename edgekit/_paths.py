"""Where edgekit's files live: the package, the model zoo's manifest, the caches of built files.

Every folder rule is here, so that the library, the grader's fence (which must mount these
folders read-only) and the command line agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ._errors import ZooError

PACKAGE = Path(__file__).resolve().parent  # edgekit/
DATA = PACKAGE / "data"  # small data files that ship in the package


def models_dir() -> Path:
    """Where the manifest and committed models live.

    ``$EDGEKIT_MODELS_DIR``, else ``edgekit/_models`` inside an installed wheel, else the
    repository's ``models/`` next to the package (a source checkout or ``pip install -e``).
    """
    for candidate in (os.environ.get("EDGEKIT_MODELS_DIR"), PACKAGE / "_models", PACKAGE.parent / "models"):
        if candidate and (Path(candidate) / "manifest.json").is_file():
            return Path(candidate)
    raise ZooError(
        f"the model zoo manifest was not found (looked in $EDGEKIT_MODELS_DIR, {PACKAGE / '_models'}, "
        f"{PACKAGE.parent / 'models'}). Install edgekit from its repository (pip install -e .) "
        "or set EDGEKIT_MODELS_DIR to the repository's models/ folder"
    )


CACHE_KINDS = ("models", "videos", "tensorrt")  # what edgekit builds on demand, one folder each


def cache_root() -> Path:
    """The folder of everything edgekit builds on demand: ``$EDGEKIT_CACHE``, else ``edgekit/`` in
    the platform's user cache (``~/.cache/edgekit`` on Linux, honouring ``$XDG_CACHE_HOME``)."""
    if os.environ.get("EDGEKIT_CACHE"):
        return Path(os.environ["EDGEKIT_CACHE"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "edgekit"


def cache_dir(kind: str = "models") -> Path:
    """The one cache rule: ``cache_root() / kind`` — models built on demand in ``models/``, generated
    video clips in ``videos/``, TensorRT engines in ``tensorrt/``. Set ``$EDGEKIT_CACHE`` to move them
    all (a course machine, CI: ``.ci/run`` starts from an empty one); the grader lends the root to
    student code read-only."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"cache kind must be one of {CACHE_KINDS}, got {kind!r}")
    return cache_root() / kind
