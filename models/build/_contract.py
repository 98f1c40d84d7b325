"""The build-script contract shared by the scripts in this folder (see models/README.md).

A script runs as ``python models/build/<script>.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import sys


def need(module: str, pip: str):
    """Import ``module`` or exit with code 3 and the pip command (the build-script contract)."""
    try:
        return __import__(module)
    except ImportError:
        print(f"{module} is not installed: pip install {pip}", file=sys.stderr)
        sys.exit(3)
