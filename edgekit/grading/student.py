"""The loop inside a student's fenced process: run the notebook as Jupyter would, answer requests.

It only ever computes values. The grader sends the program (the assembled cells); this loop
runs them in one IPython namespace and reports each cell's outcome. Before an nbgrader test
cell it forks a *probe* — a copy of the notebook as it stands just before that cell — which
answers the grader's questions (a global's value, a call of a student function) while the
grader runs the test cell's own code itself; then the real cell runs here, so state flows as
in one kernel. After the program, requests name a student global (or a handle to an object
returned earlier) and arguments; replies carry data or an error, never a verdict. A student
who patches this module, numpy or the builtins changes only what their own process sends.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import types
from typing import Any

from . import wire
from .kernel import Kernel


class _Tee(io.TextIOBase):
    """Keep what a call prints (the grader's test may read it) and still pass it to the real stdout."""

    def __init__(self, real, limit: int = 1 << 20):
        self.real, self.limit, self.kept = real, limit, io.StringIO()

    def write(self, s: str) -> int:
        if self.kept.tell() < self.limit:
            self.kept.write(s[: self.limit - self.kept.tell()])
        return self.real.write(s)

    def flush(self) -> None:
        self.real.flush()


class Server:
    def __init__(self, req: int, resp: int, execution: str = "autograde"):
        self.req, self.resp = req, resp
        # descriptors 1 and 2 are the output pipe; the parent's sys.stdout object may wrap another
        # descriptor (a test runner's capture file), closed in this process
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        self.execution, self._kernel = execution, None  # the shell is made when a program arrives:
        self.handles: dict[int, Any] = {}                  # spare processes that never run one never pay for it

    @property
    def kernel(self) -> Kernel:
        if self._kernel is None:
            self._kernel = Kernel(execution=self.execution)
        return self._kernel

    @property
    def ns(self) -> dict[str, Any]:
        return self.kernel.ns

    # -- values and arguments -----------------------------------------------------------------

    def _arg_hook(self, tag: str, v: dict, dec) -> Any:
        if tag == "$obj":
            return _resolve(v["$obj"])(*dec(v["args"]), **dec(v["kwargs"]))
        if tag == "$import":
            return _resolve(v["$import"])
        if tag == "$ref":
            return self._lookup(v["$ref"])
        if tag == "$handle":
            return self.handles[int(v["$handle"])]
        if tag == "$callback":
            return self._callback(int(v["$callback"]), str(v.get("name", "callback")))
        raise wire.WireError(f"unknown tag {tag!r}")

    def _callback(self, key: int, name: str):
        """A function of the grader's (a test's lambda) that student code may call: it asks the grader."""
        server = self

        def callback(*args: Any, **kwargs: Any) -> Any:
            wire.send(server.resp, {"op": "callback", "id": key, "args": server._encode_arg(args),
                                    "kwargs": server._encode_arg(kwargs)})
            reply = wire.recv(server.req)
            if reply.get("ok"):
                return wire.decode(reply.get("value"), server._arg_hook)
            raise _exception(reply)

        callback.__name__ = callback.__qualname__ = name
        return callback

    def _encode_arg(self, v: Any) -> Any:
        """Arguments of a callback: data, or a handle the grader can pass back."""
        if isinstance(v, tuple):
            return {"$tuple": [self._encode_arg(x) for x in v]}
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {"$dict": [[k, self._encode_arg(x)] for k, x in v.items()]}
        try:
            return wire.encode(v)
        except wire.Unsendable:
            return {"$handle": self._keep(v)}

    def _keep(self, value: Any) -> int:
        h = len(self.handles) + 1
        self.handles[h] = value
        return h

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
            return {"ok": True, "handle": self._keep(value), "type": type(value).__qualname__,
                    "callable": callable(value)}

    def describe(self, names: list[str]) -> dict:
        """What each global is, for a grader replaying a test cell: data, a module, a handle, or absent."""
        out = {}
        for name in names:
            if name not in self.ns:
                out[name] = {"kind": "missing"}
                continue
            value = self.ns[name]
            if isinstance(value, types.ModuleType):
                out[name] = {"kind": "module", "module": str(getattr(value, "__name__", ""))}
                continue
            try:
                wire.encode(value)
                out[name] = {"kind": "data", "value": value}
            except (wire.Unsendable, wire.WireError):
                out[name] = {"kind": "handle", "handle": self._keep(value), "type": type(value).__qualname__}
        return {"ok": True, "value": wire.encode(out)}

    # -- requests -------------------------------------------------------------------------------

    def handle(self, msg: dict) -> dict:
        op = msg.get("op")
        try:
            if op == "get":
                return self._reply_value(self._target(msg))
            if op == "call":
                fn = self._target(msg)
                args = wire.decode(msg["args"], self._arg_hook)
                kwargs = wire.decode(msg["kwargs"], self._arg_hook)
                tee = _Tee(sys.stdout)
                with contextlib.redirect_stdout(tee):
                    value = fn(*args, **kwargs)
                reply = self._reply_value(value)
                reply["stdout"] = tee.kept.getvalue()
                if msg.get("mutated"):  # the caller's arrays and lists, as the student's code left them
                    reply["mutated"] = {str(i): self._encode_arg(a) for i, a in enumerate(args)
                                        if isinstance(a, (list, dict, bytearray)) or type(a).__module__ == "numpy"}
                return reply
            if op == "op":  # an operator or builtin on a handle: len(h), iter(h), next(h), h[k], k in h
                return self._reply_value(_OPS[msg["fn"]](self._target(msg), *wire.decode(msg.get("args", []),
                                                                                           self._arg_hook)))
            if op == "describe":
                return self.describe([str(n) for n in msg["names"]])
            if op == "set":
                self.ns[str(msg["name"])] = wire.decode(msg["value"], self._arg_hook)
                return {"ok": True, "value": None}
            if op == "exec":  # a statement of the instructor's test cell with a library side effect
                exec(compile(str(msg["source"]), "<test cell>", "exec"), self.ns)
                return {"ok": True, "value": None}
            if op == "del":
                self.ns.pop(str(msg["name"]), None)
                return {"ok": True, "value": None}
            return {"ok": False, "error": f"unknown request {op!r}", "mro": ["ValueError"]}
        except BaseException as exc:  # SystemExit from a student's function is an answer too
            return self.error(exc)

    def error(self, exc: BaseException) -> dict:
        name = type(exc).__name__
        try:
            message = str(exc)[:2000]
        except BaseException:
            message = f"<{name} whose message cannot be shown>"
        args = list(exc.args) if all(isinstance(a, (str, int, float, bool, type(None))) for a in exc.args) else None
        return {"ok": False, "error": f"{name}: {message}" if message else name, "message": message,
                "args": args, "where": self.kernel.where(exc),
                "mro": [name] + [c.__name__ for c in type(exc).__mro__[1:] if c.__module__ == "builtins"]}

    def serve_requests(self, until: str | None = None) -> None:
        while True:
            try:
                msg = wire.recv(self.req)
            except EOFError:
                os._exit(0)
            if until is not None and msg.get("op") == until:
                return
            wire.send(self.resp, self.handle(msg))

    def probe(self, index: int) -> None:
        """Fork a copy of the notebook as it stands; it serves the grader until told to end."""
        sys.stdout.flush()
        wire.send(self.resp, {"op": "probe", "index": index})
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self.serve_requests(until="end")
            except BaseException:
                code = 1
            finally:
                wire.leave(code)
        _, status = os.waitpid(pid, 0)
        wire.send(self.resp, {"op": "probe-exit", "code": os.waitstatus_to_exitcode(status)})

    def serve(self) -> None:
        program = wire.recv(self.req)
        skip = set(program.get("skip", []))
        probes = set(program.get("probes", []))
        report = []
        for i, cell in enumerate(program["cells"]):
            label, source = str(cell["label"]), str(cell["source"])
            if i in skip:
                continue
            if i in probes:
                self.probe(i)
            wire.send(self.resp, {"op": "cell", "index": i})
            result = self.kernel.run(label, source)
            sys.stdout.flush()
            done = {"op": "done", "index": i, "ok": result.ok, "ename": result.ename, "evalue": result.evalue,
                    "where": result.where, "mro": result.mro}
            wire.send(self.resp, done)
            report.append(done)
        wire.send(self.resp, {"op": "ready", "cells": [[c["index"], c["ename"]] for c in report if not c["ok"]]})
        self.serve_requests()


_OPS = {"len": len, "iter": lambda h: list(h), "getitem": lambda h, k: h[k], "contains": lambda h, k: k in h,
        "bool": bool, "str": str, "repr": repr, "isinstance": lambda h, cls: isinstance(h, cls) is True}


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    value = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        value = getattr(value, part)
    return value


def _exception(reply: dict) -> BaseException:
    from .errors import from_reply  # the same rebuilding as in the grader: a callback's error is data too

    return from_reply(reply)
