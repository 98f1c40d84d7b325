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


def cache_dir() -> Path:
    """Where models built on demand go: ``$EDGEKIT_CACHE``, else the platform's user cache."""
    if os.environ.get("EDGEKIT_CACHE"):
        return Path(os.environ["EDGEKIT_CACHE"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "edgekit" / "models"
