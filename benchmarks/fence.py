"""How long the fence takes: fork a fenced student process and wait for its "fenced" message.

    python benchmarks/fence.py [--n 20] [--rounds 3]
    PYTHONPATH=/path/to/other/checkout python benchmarks/fence.py   # the same, for another version

Runs in a process that has imported numpy, onnxruntime and edgekit (as a grading worker has),
then ``StudentProcess.start`` + ``fenced()`` + ``close()`` n times, in a judge-like child (the
scratch tmpfs is mounted by the judge, in its own mount namespace). Prints the median and the
minimum per student process, in milliseconds, and which fence level and layers were reached.
Per-submission grading time normally includes one of these: spares for restarts are forked
unfenced and fence themselves only when a restart needs them. Compare with
``benchmarks/grading.py`` for the whole.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def one_round(n: int) -> dict:
    from edgekit.grading import sandbox
    from edgekit.grading.lab import Limits
    from edgekit.grading.process import StudentProcess

    scratch = Path(tempfile.mkdtemp(prefix="edgekit-fence-bench-")).resolve()
    if hasattr(sandbox, "private_scratch"):
        sandbox.private_scratch(scratch, Limits().disk_mb)
    times, fence = [], {}
    for _ in range(n):
        t0 = time.perf_counter()
        p = StudentProcess.start(scratch, [], Limits(), True)
        fence = p.fenced(time.monotonic() + 30)
        p.close()
        times.append(time.perf_counter() - t0)
    return {"ms": [t * 1000 for t in times], "fence": fence}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import numpy  # noqa: F401  (a warm worker has these)
    import onnxruntime  # noqa: F401

    import edgekit

    ms: list[float] = []
    fence: dict = {}
    for _ in range(args.rounds):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a judge: its own process, as in grading (the scratch mount lives and dies with it)
            os.close(r)
            os.write(w, json.dumps(one_round(args.n)).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 1 << 16):
            data += chunk
        os.waitpid(pid, 0)
        res = json.loads(data)
        ms += res["ms"]
        fence = res["fence"]
    print(f"edgekit from {Path(edgekit.__file__).parent}; {args.rounds} x {args.n} student processes")
    print(f"start + fenced + close: median {statistics.median(ms):.1f} ms, min {min(ms):.1f} ms, "
          f"max {max(ms):.1f} ms")
    print("fence:", json.dumps({k: v for k, v in fence.items() if k != "op"}))


if __name__ == "__main__":
    sys.exit(main())
