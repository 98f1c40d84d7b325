"""The same grading on a ``dask.distributed`` cluster, for courses that outgrow one machine.

Workers need edgekit installed, nothing else: each task carries the lab's files, the notebook and
the expected values, and runs ``python -m edgekit.grading.remote`` in a fresh process. That
process reads only the task's header, forks its fenced student processes, and only then reads
the rest (the secrets) from its stdin — the same order as on one machine. Results come back to
the coordinator, which writes them to ``OUT`` like a local run.

    edgekit grade labs/lab01 submissions/ --out grades/ --scheduler tcp://10.0.0.5:8786
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from .judge import Task
from .lab import Limits, load_lab
from .results import atomic_write


def _payload(task: Task) -> str:
    lab = load_lab(task.lab)
    files = {str(p.relative_to(lab.root)): base64.b64encode(p.read_bytes()).decode() for p in lab.sources()}
    entry = Path(task.lab).name if Path(task.lab).suffix == ".ipynb" else "."
    return json.dumps({"files": files, "entry": entry, "expected": Path(task.expected).read_text(),
                       "submission": base64.b64encode(Path(task.submission).read_bytes()).decode()})


def grade_remote(header: dict, payload: str) -> dict:
    """Runs on a dask worker: one fresh judge process per submission."""
    proc = subprocess.run([sys.executable, "-m", "edgekit.grading.remote"], input=json.dumps(header) + "\n" + payload,
                          capture_output=True, text=True, timeout=header["limits"]["wall_s"] * 3 + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"remote judge failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def run_on_dask(scheduler: str, tasks: list[Task], progress) -> Iterator[dict]:
    from .._extras import require

    distributed = require("distributed", extra="dist", purpose="grading on a dask cluster")
    client = distributed.Client(scheduler, timeout="30s")
    try:
        futures = {}
        for t in tasks:
            header = {"student": t.student, "limits": asdict(t.limits), "isolate": t.isolate, "questions": t.questions,
                      "nbgrader_policy": t.nbgrader_policy, "unsafe_no_cgroups": t.unsafe_no_cgroups}
            futures[client.submit(grade_remote, header, _payload(t), pure=False)] = t
        with progress as advance:
            for fut in distributed.as_completed(futures):
                t = futures[fut]
                try:
                    res = fut.result()
                    for name, text in res["files"].items():
                        atomic_write(Path(t.out) / t.student / name, text)
                    record = res["record"]
                except Exception as exc:  # one failed task costs one submission, never the batch
                    record = {"student": t.student, "status": "error", "score": 0.0, "questions": {}, "tests": [],
                              "notes": [f"remote grading failed: {exc}"], "sha256": "", "max_score": 0.0}
                    from .results import write_student

                    write_student(Path(t.out) / t.student, record)
                advance()
                yield record
    finally:
        client.close()


def main() -> None:
    """The judge process on a worker: header first, fork, then the secrets (see the module docstring)."""
    from .judge import grade_with, start_students

    header = json.loads(sys.stdin.readline())
    with tempfile.TemporaryDirectory(prefix="edgekit-remote-") as tmp:
        root = Path(tmp).resolve()
        for sub in ("lab", "submission", "out"):
            (root / sub).mkdir()
        task = Task(lab="", submission=str(root / "submission" / "submission.ipynb"), student=header["student"],
                    out=str(root / "out"), scratch=str(root / "scratch"), expected=str(root / "expected.json"),
                    limits=Limits(**header["limits"]), hide=[str(root)], isolate=header["isolate"],
                    questions=int(header.get("questions", 1)),
                    nbgrader_policy=str(header.get("nbgrader_policy", "strict")),
                    unsafe_no_cgroups=bool(header.get("unsafe_no_cgroups", False)))
        spares = start_students(task)  # clean: nothing secret has been read yet
        payload = json.loads(sys.stdin.read())
        for rel, data in payload["files"].items():
            dest = (root / "lab" / rel).resolve()
            if not dest.is_relative_to(root / "lab"):
                raise SystemExit(f"refusing lab file outside the lab folder: {rel}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(base64.b64decode(data))
        Path(task.submission).write_bytes(base64.b64decode(payload["submission"]))
        Path(task.expected).write_text(payload["expected"])
        task.lab = str(root / "lab" / payload["entry"])
        record = grade_with(spares, task)
        out = root / "out" / task.student
        files = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file()}
    sys.stdout.write(json.dumps({"record": record, "files": files}, default=str))


if __name__ == "__main__":
    main()
