"""The loop that runs inside a student's fenced process: run the notebook, then answer requests.

It only ever computes values. Requests name a student global (or a handle to an object it
returned earlier) and arguments; replies carry data or an error. Nothing here decides a
grade, so a student who patches this module, numpy or the builtins changes only the values
their own process sends — which are compared with the reference elsewhere.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any

from . import wire
from .runcells import fresh_namespace, run_cells


class Server:
    def __init__(self, req: int, resp: int):
        self.req, self.resp = req, resp
        self.ns = fresh_namespace()
        self.handles: dict[int, Any] = {}

    def _arg_hook(self, tag: str, v: dict, dec) -> Any:
        if tag == "$obj":
            module, _, attr = v["$obj"].partition(":")
            factory = importlib.import_module(module)
            for part in attr.split("."):
                factory = getattr(factory, part)
            return factory(*dec(v["args"]), **dec(v["kwargs"]))
        if tag == "$ref":
            return self._lookup(v["$ref"])
        if tag == "$handle":
            return self.handles[int(v["$handle"])]
        raise wire.WireError(f"unknown tag {tag!r}")

    def _lookup(self, name: str) -> Any:
        if name not in self.ns:
            raise NameError(f"name {name!r} is not defined — did the cell that defines it run without errors?")
        return self.ns[name]

    def _target(self, msg: dict) -> Any:
        if "handle" in msg:
            value = self.handles[int(msg["handle"])]
            return getattr(value, msg["attr"]) if msg.get("attr") else value
        return self._lookup(msg["name"])

    def _reply_value(self, value: Any) -> dict:
        try:
            return {"ok": True, "value": wire.encode(value)}
        except wire.Unsendable:
            h = len(self.handles) + 1
            self.handles[h] = value
            return {"ok": True, "handle": h, "type": type(value).__qualname__, "callable": callable(value)}

    def handle(self, msg: dict) -> dict:
        op = msg.get("op")
        try:
            if op == "get":
                return self._reply_value(self._target(msg))
            if op == "call":
                fn = self._target(msg)
                args = wire.decode(msg["args"], self._arg_hook)
                kwargs = wire.decode(msg["kwargs"], self._arg_hook)
                return self._reply_value(fn(*args, **kwargs))
            return {"ok": False, "error": f"unknown request {op!r}"}
        except BaseException as exc:  # SystemExit from a student's function is an answer too
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": "".join(tb)[-4000:]}

    def serve(self) -> None:
        program = wire.recv(self.req)
        report = run_cells([tuple(c) for c in program["cells"]], self.ns)
        wire.send(self.resp, {"op": "ready", "cells": report})
        while True:
            try:
                msg = wire.recv(self.req)
            except EOFError:
                return
            wire.send(self.resp, self.handle(msg))
