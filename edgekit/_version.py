"""The version of edgekit (one place; the root package and result files read it here)."""

__version__ = "0.1.0"
