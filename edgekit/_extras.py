"""Optional dependencies that say how to install themselves.

>>> np = require("numpy", extra="core")
>>> np.__name__
'numpy'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import MissingExtraError

# Which extra brings which importable module (see pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "lab": ("matplotlib", "nbformat", "nbclient", "jupyterlab"),
    "qnn": ("onnxruntime_qnn",),
    "dist": ("distributed", "dask"),
    "train": ("torch",),
    "dev": ("pytest", "hypothesis"),
}


def require(module: str, *, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise a one-line :class:`MissingExtraError` naming the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingExtraError(
            f"'{module}' is not installed{why}: run  pip install 'edgekit[{extra}]'"
        ) from exc
