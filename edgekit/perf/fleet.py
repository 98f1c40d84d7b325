"""Run a benchmark suite on a fleet of boards: ``dask.distributed`` workers with resource labels.

Each board runs ``dask worker tcp://HOST:8786 --nthreads 1 --resources "board-rpi5=1" --name rpi5-1``
(edgekit installed, nothing else: files named in the suite are shipped with the job). Every worker
carrying a chosen label is one board and runs the whole suite, one benchmark at a time, pinned to it
(a result must come from the board it is filed under). Results come back to this machine and are
written as they arrive to ``OUT/<board>/<model>__<setting>.json`` (the board is the label, or
``label@worker`` when several workers share a label), each with ``result["fleet"]`` saying which
worker and host produced it, next to the device fingerprint the benchmark records. A re-run skips
finished files. A worker that dies loses only its in-flight benchmark, reported as ``lost``; if it
comes back under the same name (a nanny restart) the rest of its suite goes on there. ``OUT/fleet.json``
holds every job's status: done, skipped, lost, error or not-run.

    edgekit bench --suite benchmarks/suites/quick.json --scheduler tcp://10.0.0.5:8786 \\
        --on board-rpi5,board-jetson --out fleet/
    edgekit compare fleet/ && edgekit report fleet/ -o fleet.html
"""

from __future__ import annotations

import re
import socket
import tempfile
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .._errors import FleetError
from .suite import job_file, jobs, load_suite, write_json

FAILED = ("lost", "error", "not-run")


@dataclass
class Board:
    """One worker carrying one chosen label; ``folder`` is its result folder under OUT."""

    label: str
    worker: str
    address: str
    host: str
    folder: str


@dataclass
class Job:
    board: str
    model: str
    setting: dict
    file: str
    status: str = "pending"  # done, skipped, lost, error, not-run
    worker: str = ""
    seconds: float | None = None
    message: str = ""


@dataclass
class FleetRun:
    out: Path
    boards: list[Board]
    jobs: list[Job] = field(default_factory=list)

    def counts(self, board: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.jobs:
            if board is None or j.board == board:
                out[j.status] = out.get(j.status, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return not any(j.status in FAILED for j in self.jobs)

    def to_dict(self) -> dict:
        return {"out": str(self.out), "boards": [asdict(b) for b in self.boards],
                "jobs": [asdict(j) for j in self.jobs], "counts": self.counts()}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=@-]", "_", name)


def find_boards(workers: dict[str, dict], on: list[str] | None = None) -> list[Board]:
    """The boards among ``scheduler_info()["workers"]``: each (worker, label) pair for the labels ``on``
    (default: every label the workers carry).

    >>> ws = {"tcp://a:1": {"name": "pi-1", "host": "a", "resources": {"board-rpi5": 1}}}
    >>> [b.folder for b in find_boards(ws, ["board-rpi5"])]
    ['board-rpi5']
    """
    have: dict[str, list[tuple[str, dict]]] = {}
    for addr, w in sorted(workers.items(), key=lambda kv: str(kv[1].get("name"))):
        for label in w.get("resources") or {}:
            have.setdefault(label, []).append((addr, w))
    if not have:
        raise FleetError(f"none of the cluster's {len(workers)} worker(s) carries a resource label — start each "
                         f'board with  dask worker SCHEDULER --nthreads 1 --resources "board-NAME=1" --name NAME')
    wanted = list(on) if on else sorted(have)
    missing = [x for x in wanted if x not in have]
    if missing:
        raise FleetError(f"no worker carries the label(s) {', '.join(missing)}; the cluster has: "
                         f"{', '.join(sorted(have))} — fix --on, or start a worker with --resources \"{missing[0]}=1\"")
    boards = []
    for label in wanted:
        for addr, w in have[label]:
            name = str(w.get("name") or addr)
            folder = label if len(have[label]) == 1 else f"{label}@{name}"
            boards.append(Board(label, name, addr, str(w.get("host") or ""), _safe(folder)))
    return boards


def bench_on_worker(model: str, options: dict, meta: dict, blob: bytes | None = None, repeat: int = 1) -> dict:
    """Runs on the board's dask worker: one benchmark (``repeat`` runs, a process each, when > 1); the
    result says which worker and host ran it."""
    from distributed import get_worker

    from .suite import measure

    worker = get_worker()
    with tempfile.TemporaryDirectory(prefix="edgekit-fleet-") as tmp:
        if blob is not None:  # a model file from the coordinator: keep its name, it names the result
            path = Path(tmp) / Path(model).name
            path.write_bytes(blob)
            model = str(path)
        result = measure(model, options, repeat).to_dict()
    result["fleet"] = {**meta, "worker": str(worker.name), "address": worker.address, "host": socket.gethostname()}
    return result


def run_fleet(suite_path: str | Path, out: str | Path, scheduler, on: list[str] | None = None, *,
              force: bool = False, on_event: Callable[[Job], None] | None = None,
              rejoin_s: float = 15.0, poll_s: float = 0.2) -> FleetRun:
    """Run the suite on every board of the cluster at ``scheduler`` (an address or a Client).

    >>> run = run_fleet("benchmarks/suites/quick.json", "fleet", "tcp://127.0.0.1:8786", ["board-a"])  # doctest: +SKIP
    >>> run.counts()  # doctest: +SKIP
    {'done': 4}
    """
    from .._extras import require
    from ..runtime.zoo import is_zoo_name

    distributed = require("distributed", extra="dist", purpose="benchmarking on a dask cluster")
    suite = load_suite(suite_path)
    out = Path(out)
    own = not isinstance(scheduler, distributed.Client)
    client = distributed.Client(scheduler, timeout="30s") if own else scheduler
    try:
        boards = find_boards(client.scheduler_info()["workers"], on)
        run = FleetRun(out, boards)
        blobs = {m: Path(m).read_bytes() for m in suite["models"] if not is_zoo_name(m) and Path(m).is_file()}
        queues: dict[str, deque] = {}
        for b in boards:
            queues[b.folder] = deque()
            for model, combo in jobs(suite):
                target = job_file(out / b.folder, model, combo)
                job = Job(b.folder, model, combo, str(target))
                run.jobs.append(job)
                if target.exists() and not force:
                    job.status, job.message = "skipped", "finished by an earlier run"
                    if on_event:
                        on_event(job)
                else:
                    queues[b.folder].append(job)
        write_json(out / "fleet.json", run.to_dict())
        by_folder = {b.folder: b for b in boards}
        running: dict = {}  # future -> (job, board, start time)
        waiting: dict[str, float] = {}  # board folder -> deadline for its worker to come back

        def launch(b: Board) -> None:
            if not queues[b.folder]:
                return
            job = queues[b.folder].popleft()
            meta = {"label": b.label, "board": b.folder, "suite": suite.get("name", Path(suite_path).stem)}
            options = {**suite.get("budget", {}), **job.setting}
            fut = client.submit(bench_on_worker, job.model, options, meta, blobs.get(job.model), suite.get("repeat", 1),
                                key=f"edgekit-bench-{b.folder}-{Path(job.file).stem}-{uuid.uuid4().hex[:8]}",
                                workers=[b.address], allow_other_workers=False, resources={b.label: 1},
                                retries=0, pure=False)
            job.worker = b.worker
            running[fut] = (job, b, time.perf_counter())

        def finish(job: Job, status: str, t0: float | None, message: str = "") -> None:
            job.status, job.message = status, message
            job.seconds = None if t0 is None else round(time.perf_counter() - t0, 3)
            write_json(out / "fleet.json", run.to_dict())  # after every job: an interrupted run still tells
            if on_event:
                on_event(job)

        for b in boards:
            launch(b)
        while running or waiting:
            try:
                distributed.wait(list(running), timeout=poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:  # distributed's TimeoutError is the builtin one
                pass
            if not running:
                time.sleep(poll_s)
            live = client.scheduler_info()["workers"]
            for fut, (job, b, t0) in list(running.items()):
                gone = b.address not in live
                if fut.status == "finished":
                    result = fut.result()
                    result["suite"] = suite.get("name", Path(suite_path).stem)
                    write_json(Path(job.file), result)
                    finish(job, "done", t0, f"p50 {result['latency_ms']['p50']:.4f} ms")
                elif gone:
                    why = f" ({_why(fut)})" if fut.done() else ""
                    fut.cancel()  # pinned to a worker that is gone: it would wait forever
                    finish(job, "lost", t0, f"worker {b.worker} ({b.address}) left while running this "
                                            f"benchmark{why}; re-run the command to retry it")
                elif fut.done():
                    finish(job, "error", t0, _why(fut))
                else:
                    continue
                del running[fut]
                if not gone:
                    launch(b)
                elif queues[b.folder]:  # give the board rejoin_s to come back for the rest of its suite
                    waiting[b.folder] = time.monotonic() + rejoin_s
            for folder, deadline in list(waiting.items()):
                b = by_folder[folder]
                back = [a for a, w in live.items()
                        if str(w.get("name")) == b.worker and b.label in (w.get("resources") or {})]
                if back:  # the same board under a new address (a nanny restarted it): go on there
                    b.address = back[0]
                    del waiting[folder]
                    launch(b)
                elif time.monotonic() > deadline:
                    del waiting[folder]
                    while queues[folder]:
                        job = queues[folder].popleft()
                        finish(job, "not-run", None, f"worker {b.worker} did not come back within {rejoin_s:.0f} s; "
                                                     "re-run the command when it is up")
        return run
    finally:
        if own:
            client.close()


def _why(fut) -> str:
    if fut.status == "cancelled" or not fut.done():
        return "cancelled"
    exc = fut.exception()
    return f"{type(exc).__name__}: {exc}".strip()[:500]
