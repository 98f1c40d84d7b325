"""The ``edgekit`` command line: one argparse parser, every subcommand a real subparser.

    edgekit tour                       device check, inference, a short benchmark, a plot
    edgekit doctor [--json]            is this installation healthy? what to fix
    edgekit models list|info|build|verify
    edgekit info MODEL                 opset, parameters, op histogram, inputs/outputs
    edgekit bench MODEL [--threads 1,2] [--json out.json]    edgekit compare A.json B.json
    edgekit report RESULT.json... -o report.html              edgekit profile MODEL [--runs N]
    edgekit run MODEL IMAGE            classify or find faces in one photo with a zoo model (--out draws it)
    edgekit npu-check MODEL --soc 57   which nodes a Snapdragon NPU would run (QNN HTP emulator)
    edgekit lab release LAB --out DIR  edgekit check NOTEBOOK  edgekit grade LAB SUBMISSIONS --out OUT
    edgekit collect EXPORT.zip --lms moodle|canvas|gradescope|folder --lab LAB --out SUBMISSIONS
    edgekit similar SUBMISSIONS --lab LAB   edgekit export OUT --lms moodle|canvas|csv
    edgekit review OUT                 grade rubric questions in a local browser page (several TAs at once)
    edgekit wheelhouse DIR             every wheel the labs need, for installs with no index (a classroom)

Each module of this package registers a group of subcommands (``register(sub)``); command bodies
import what they need when they run, so ``edgekit --help`` imports no numpy, onnxruntime or OpenCV.
Argument handling lives only here: the library modules (runtime/, perf/, vision/, deploy/,
grading/) have no ``main()``. Every mistake a user can make ends as one ``edgekit: error: ...``
line on stderr and exit status 2: argparse's own errors, and every :class:`~edgekit.EdgekitError`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .._errors import EdgekitError

GROUPS = ("runtime", "bench", "grading", "collect", "review", "similar", "export", "vision", "npu", "optimize",
          "video", "wheelhouse")  # modules here with register()


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one ``edgekit: error: ...`` line that says where help is."""

    def error(self, message: str):
        self.exit(2, f"edgekit: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    from .._version import __version__

    p = Parser(prog="edgekit", description="Offline Edge-AI lab kit on ONNX Runtime.")
    p.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")  # subparsers are Parsers too
    for module in GROUPS:
        importlib.import_module(f".{module}", __package__).register(sub)
    return p


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgekitError as exc:
        # Errors that teach are for people: one line, no traceback from deep inside a library.
        print(f"edgekit: error: {_one_line(exc)}", file=sys.stderr)
    except OSError as exc:  # a path given on the command line that cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"edgekit: error: {exc.strerror or _one_line(exc)}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print("edgekit: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
