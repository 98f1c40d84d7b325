"""Helpers for Lab 8: replay scripted operations on your FrameQueue, run it in real threads, and
the generator of the (simulated) timing log ``lab08_timing_log.json``.

Nothing here measures your computer: the queue is judged by what comes out of it, in which order,
and how many frames it dropped; the timing questions use the recorded log.
"""

from __future__ import annotations

import threading

import numpy as np


def run_script(queue_class, maxsize: int, drop_oldest: bool, script: list) -> dict:
    """Apply ``script`` to ``queue_class(maxsize, drop_oldest)`` in one thread; report what happened.

    Each step is ``["put", item]`` or ``["get"]``. A put or get that would wait is given
    ``timeout=0.01`` s, so a full (or empty) queue shows up as ``False`` (or ``None``) instead of
    a hang. Returns ``{"results": [...], "dropped": n, "left": [...]}`` where ``left`` is what a
    final series of gets still finds in the queue, oldest first.

    >>> # run_script(FrameQueue, 2, True, [["put", 0], ["put", 1], ["put", 2], ["get"]])
    >>> # {'results': [True, True, True, 1], 'dropped': 1, 'left': []}
    """
    q = queue_class(maxsize, drop_oldest)
    results = []
    for step in script:
        if step[0] == "put":
            results.append(q.put(step[1], timeout=0.01))
        else:
            results.append(q.get(timeout=0.01))
    left = []
    while len(left) <= maxsize and (item := q.get(timeout=0.01)) is not None:
        left.append(item)
    return {"results": results, "dropped": int(q.dropped), "left": left}


def run_threads(queue_class, n_frames: int, maxsize: int, drop_oldest: bool) -> dict:
    """A producer thread puts frames 0..n_frames-1 then ``None`` (the end); a consumer thread gets.

    Without dropping, the consumer reads as the producer writes (the producer waits when the queue
    is full). With dropping, the consumer is a *very* slow one: it starts reading only after the
    producer has finished, so only the newest frames are still there. Returns the frame indices the
    consumer received, in order, and the queue's drop count.
    """
    q = queue_class(maxsize, drop_oldest)
    produced, received = threading.Event(), []

    def producer():
        for i in range(n_frames):
            q.put(i, timeout=5.0)
        q.put(None, timeout=5.0)  # the end of the stream
        produced.set()

    def consumer():
        if drop_oldest:
            produced.wait(10.0)
        while (item := q.get(timeout=5.0)) is not None:
            received.append(item)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15.0)
    return {"received": received, "dropped": int(q.dropped)}


STAGES = ["capture", "preprocess", "infer", "postprocess"]


def simulate_log(n: int = 240, seed: int = 8, queue_size: int = 2) -> dict:
    """The SIMULATED timing log of one clip processed twice: sequentially and pipelined.

    Per frame and stage, a duration is drawn (lognormal around typical values for a 640x480 video
    and a small detector on a Raspberry Pi class CPU); then both schedules are computed from the
    same durations. Sequential: a stage starts when the previous stage of the same frame ends, and
    frame i starts when frame i-1 is completely done. Pipelined (one thread per stage, bounded
    queues of ``queue_size`` frames in between, no dropping): a stage starts frame i when its input
    is ready AND its thread is free: it has finished frame i-1 and managed to put it in the next
    queue (a full queue makes it wait until the next stage takes a frame out).
    Times are in seconds on the clock of the run (like ``time.perf_counter``), rounded to 1 us.
    """
    rng = np.random.default_rng(seed)
    typical_ms = np.array([4.0, 6.5, 21.0, 2.5])
    d = typical_ms * rng.lognormal(0.0, 0.12, size=(n, len(STAGES))) / 1000.0
    d[rng.choice(n, 6, replace=False), 2] *= 3.0  # a few slow inferences: the OS took the core away
    runs = {}
    for mode in ("sequential", "pipelined"):
        start, end = np.zeros_like(d), np.zeros_like(d)
        t0 = 512.25  # a perf_counter value does not start at 0
        for i in range(n):
            for s in range(len(STAGES)):
                if mode == "sequential":
                    ready = end[i, s - 1] if s else (end[i - 1, -1] if i else t0)
                else:
                    j = i - 1 - queue_size  # frame i-1 fits in the next queue once frame j left it
                    free = max(end[i - 1, s], start[j, s + 1] if j >= 0 and s + 1 < len(STAGES) else t0) if i else t0
                    ready = max(end[i, s - 1] if s else t0, free)
                start[i, s] = ready
                end[i, s] = ready + d[i, s]
        runs[mode] = {"index": list(range(n)), "start": np.round(start, 6).tolist(), "end": np.round(end, 6).tolist()}
    return {"note": "SIMULATED with lab08_support.simulate_log(): not a measurement", "stages": STAGES, "runs": runs}


if __name__ == "__main__":  # regenerate the shipped log:  python lab08_support.py
    import json
    from pathlib import Path

    Path(__file__).with_name("lab08_timing_log.json").write_text(json.dumps(simulate_log()) + "\n")
