"""What a pipeline run reports (per-stage and end-to-end latency, drops, FPS) and how a stage stops it.

Shared by :mod:`edgekit.vision.pipeline` (the user's side) and :mod:`edgekit.vision.scheduler`
(the threads that run the stages).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SCHEMA = "edgekit.pipeline/1"


class StopPipeline(Exception):
    """Raise from any stage (e.g. the sink, when the user presses q) to end the run cleanly."""


@dataclass(frozen=True)
class StageStats:
    """Time spent inside one stage per frame (queue waits excluded), in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> "StageStats":
        if not seconds:
            return cls(0, *[float("nan")] * 4)
        ms = np.asarray(seconds) * 1e3
        return cls(len(ms), float(ms.mean()), float(np.percentile(ms, 50)), float(np.percentile(ms, 90)),
                   float(ms.max()))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PipelineResult:
    """What a run did: frames through every stage, drops, FPS, per-stage and end-to-end latency.

    ``latency`` is per frame, from the moment the frame was read to the end of the last stage
    (queue waits included); ``frame_latency_ms`` holds the raw samples, in completion order.
    """

    mode: str
    frames: int
    captured: int
    dropped: int
    wall_s: float
    fps: float
    stages: dict[str, StageStats]
    latency: StageStats
    stop_reason: str
    frame_indices: list[int] = field(default_factory=list)
    frame_latency_ms: list[float] = field(default_factory=list)
    outputs: list[Any] | None = None

    def to_dict(self) -> dict:
        """JSON-ready (``outputs`` left out: they can be anything)."""
        d = {k: v for k, v in asdict(self).items() if k != "outputs"}
        d["stages"] = {k: s.to_dict() for k, s in self.stages.items()}
        d["latency"] = self.latency.to_dict()
        return {"schema": SCHEMA, **d}

    def __str__(self) -> str:
        lines = [f"{self.mode}: {self.frames} frames in {self.wall_s:.2f} s = {self.fps:.1f} FPS, "
                 f"{self.dropped} dropped of {self.captured} read ({self.stop_reason})",
                 f"  {'stage':<12}{'n':>6}{'mean ms':>10}{'p50 ms':>9}{'p90 ms':>9}"]
        for name, s in [*self.stages.items(), ("end-to-end", self.latency)]:
            lines.append(f"  {name:<12}{s.n:>6}{s.mean_ms:>10.3f}{s.p50_ms:>9.3f}{s.p90_ms:>9.3f}")
        return "\n".join(lines)
