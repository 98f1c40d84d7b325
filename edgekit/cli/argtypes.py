"""The value types of the command line's options: each parses one option's text or says, in one
line, what it expected and what it got (argparse turns that into ``edgekit: error: ...``)."""

from __future__ import annotations

import argparse

# spelled out here so that `edgekit --help` imports no numpy (a test checks they match runtime.model's)
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "layout", "all")


def count(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    return parse


def _number(text: str, ok, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ok(value):  # nan fails every comparison: refused too
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def seconds(text: str) -> float:
    return _number(text, lambda v: v >= 0, "seconds >= 0")


def fraction(text: str) -> float:
    return _number(text, lambda v: 0 <= v <= 1, "a fraction like 0.02 (2%), from 0 to 1")


def str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def int_list(minimum: int):
    """An argparse type: a comma list of integers >= ``minimum`` (a sweep)."""
    def parse(text: str) -> list[int]:
        try:
            values = [int(t) for t in str_list(text)]
        except ValueError:
            values = []
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= {minimum} like 1,2,4, got {text!r}")
        return values
    return parse


def opt_list(text: str) -> list[str]:
    levels = str_list(text)
    if not levels or any(lv not in OPTIMIZATION_LEVELS for lv in levels):
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(OPTIMIZATION_LEVELS)}; got {text!r}")
    return levels


def spin_list(text: str) -> list[bool]:
    values = {"on": True, "off": False}
    flags = str_list(text)
    if not flags or any(f not in values for f in flags):
        raise argparse.ArgumentTypeError(f"--spin takes on, off or on,off; got {text!r}")
    return [values[f] for f in flags]
