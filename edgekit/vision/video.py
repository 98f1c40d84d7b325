"""Video sources for real-time labs: a camera, a file, an image folder, or a synthetic clip.

Every source is opened from one URI and yields :class:`Frame` objects (BGR uint8, as OpenCV
decodes them) with a running index and a timestamp in seconds:

    camera://0                          cv2.VideoCapture(0), a webcam (timestamps: wall clock)
    file://clip.mp4   or   clip.mp4     a video file (timestamps: index / fps)
    folder://shots/                     the images of a folder, in sorted name order
    synthetic://?frames=120&fps=30&size=320x240&pattern=face&realtime=0
                                        a deterministic clip: a face cut from
                                        sample_image("astronaut") (or pattern=disc, a bright
                                        disc) gliding over a fixed background, so a face detector
                                        finds a face in every frame; realtime=1 paces it at fps

No camera here? ``make_test_video`` writes a clip from the synthetic generator, and
``sample_video()`` caches one on demand (nothing large ships in the repository).

>>> with VideoSource("synthetic://?frames=3&size=64x48") as src:
...     [(f.index, f.timestamp, f.image.shape) for f in src]
[(0, 0.0, (48, 64, 3)), (1, 0.0333..., (48, 64, 3)), (2, 0.0666..., (48, 64, 3))]
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs

import numpy as np

from .. import _paths
from .._errors import EdgekitError, VideoSourceError
from .._io import atomic_path
from .image import IMAGE_SUFFIXES, image_files, load_image

SCHEMES = ("camera", "file", "folder", "synthetic")
FOURCCS = {".mp4": ("mp4v", "MJPG"), ".avi": ("MJPG", "mp4v")}  # first that opens wins
FALLBACK_HINT = ("use a video file (file://clip.mp4; write one with edgekit.vision.video.make_test_video) "
                 "or the generator (synthetic://?frames=300&size=640x480)")


@dataclass
class Frame:
    """One video frame: ``image`` is BGR uint8 HxWx3; ``meta`` is scratch space for pipeline stages."""

    index: int
    timestamp: float
    image: np.ndarray
    meta: dict = field(default_factory=dict)


class _Synthetic:
    """The deterministic generator: frame i depends on (i, fps, size, pattern) only."""

    def __init__(self, frames: int, fps: float, size: tuple[int, int], pattern: str):
        import cv2

        self.frames, self.fps, self.size, self.pattern = frames, fps, size, pattern
        w, h = size
        # A fixed background: a colour gradient with a coarse grid, so frames are not flat.
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        bg = np.stack([60 + 80 * xx / w, 70 + 60 * yy / h, 90 + 40 * (xx + yy) / (w + h)], -1)
        bg[(yy.astype(int) % 40 == 0) | (xx.astype(int) % 40 == 0)] = 40
        self.background = bg.astype(np.uint8)
        self.side = max(8, int(0.5 * min(w, h)))
        if pattern == "face":
            from ..runtime.datasets import sample_image

            # The face in the 512x512 astronaut photo sits near (225, 128), ~92 px wide; the crop
            # keeps a margin around it so the detector sees a whole head.
            crop = sample_image("astronaut", color="bgr")[38:218, 135:315]
            self.patch = cv2.resize(crop, (self.side, self.side), interpolation=cv2.INTER_AREA)
        elif pattern == "disc":
            self.patch = np.zeros((self.side, self.side, 3), np.uint8)
            cv2.circle(self.patch, (self.side // 2, self.side // 2), self.side // 2 - 1, (255, 255, 255), -1)
        else:
            raise VideoSourceError(f"synthetic pattern must be 'face' or 'disc', got {pattern!r}")

    def position(self, i: int) -> tuple[int, int]:
        """Top-left corner of the patch in frame i (a Lissajous path inside the frame)."""
        (w, h), t = self.size, i / self.fps
        x = (w - self.side) * (0.5 + 0.45 * np.sin(2 * np.pi * t / 4.0))
        y = (h - self.side) * (0.5 + 0.45 * np.sin(2 * np.pi * t / 3.0))
        return int(x), int(y)

    def frame(self, i: int) -> np.ndarray:
        img = self.background.copy()
        x, y = self.position(i)
        region = img[y:y + self.side, x:x + self.side]
        if self.pattern == "disc":  # only the disc, not its black square, covers the background
            np.maximum(region, self.patch, out=region)
        else:
            region[:] = self.patch
        return img


def _query(uri: str) -> dict[str, str]:
    query = uri.split("?", 1)[1] if "?" in uri else ""
    return {k: v[-1] for k, v in parse_qs(query, strict_parsing=False).items()}


def _parse_synthetic(uri: str) -> tuple[int, float, tuple[int, int], str, bool]:
    q = _query(uri)
    known = {"frames", "fps", "size", "pattern", "realtime"}
    if set(q) - known:
        raise VideoSourceError(f"{uri!r}: unknown option(s) {sorted(set(q) - known)}; "
                               f"synthetic:// takes {sorted(known)}, e.g. synthetic://?frames=120&fps=30&size=320x240")
    try:
        frames, fps = int(q.get("frames", 120)), float(q.get("fps", 30))
        w, h = (int(v) for v in q.get("size", "320x240").lower().split("x"))
    except ValueError:
        raise VideoSourceError(f"{uri!r}: expected frames=INT, fps=NUMBER, size=WxH (like 320x240)") from None
    if frames < 1 or fps <= 0 or w < 16 or h < 16:
        raise VideoSourceError(f"{uri!r}: expected frames >= 1, fps > 0 and size >= 16x16, "
                               f"got frames={frames}, fps={fps}, size={w}x{h}")
    return frames, fps, (w, h), q.get("pattern", "face"), q.get("realtime", "0") in ("1", "true", "yes")


class VideoSource:
    """A stream of :class:`Frame` opened from a URI (see the module docstring); iterate it once.

    ``fps`` (frames per second; the file's or camera's own), ``size`` ``(width, height)``,
    ``frame_count`` (``None`` for a camera), ``live`` (frames arrive in real time, so a slow
    consumer should drop frames rather than lag). Close it, or use it as a context manager.
    ``decode_threads``: FFmpeg's decoder threads for a file (``None``: OpenCV's default, one per
    core); 1 leaves the other cores to the model when decoding runs beside inference.
    """

    def __init__(self, uri: str | os.PathLike, *, decode_threads: int | None = None):
        self.uri, self.decode_threads = str(uri), decode_threads
        self.live = False
        self._cap = self._files = self._synth = None
        self._next = 0
        self._t0 = time.perf_counter()
        scheme = self.uri.split("://", 1)[0].lower() if "://" in self.uri else ""
        rest = self.uri.split("://", 1)[1] if scheme else self.uri
        if scheme and scheme not in SCHEMES:
            raise VideoSourceError(f"unknown video source scheme {scheme + '://'!r} in {self.uri!r}; "
                                   f"expected one of {', '.join(s + '://' for s in SCHEMES)} or a file path")
        if scheme == "synthetic":
            frames, fps, size, pattern, realtime = _parse_synthetic(self.uri)
            self._synth = _Synthetic(frames, fps, size, pattern)
            self.fps, self.size, self.frame_count, self.live = fps, size, frames, realtime
        elif scheme == "camera":
            self._open_camera(rest)
        else:
            path = Path(rest)
            if scheme == "folder" or (not scheme and path.is_dir()):
                self._open_folder(path)
            else:
                self._open_file(path)

    def _open_camera(self, rest: str) -> None:
        import cv2

        if not rest.isdigit():
            raise VideoSourceError(f"camera://{rest}: expected a camera index like camera://0")
        log = cv2.utils.logging
        previous = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_SILENT)  # OpenCV's own warnings run to 15 lines; ours says it all
        try:
            cap = cv2.VideoCapture(int(rest))
        finally:
            log.setLogLevel(previous)
        if not cap.isOpened():
            cap.release()
            raise VideoSourceError(f"no camera at index {rest} (cv2.VideoCapture({rest}) did not open; "
                                   f"is one plugged in, and free?). Without a camera, {FALLBACK_HINT}")
        self._cap, self.live, self.frame_count = cap, True, None
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def _open_file(self, path: Path) -> None:
        import cv2

        if not path.is_file():
            raise VideoSourceError(f"no video file {str(path)!r} (looked from {Path.cwd()}); "
                                   "write a test clip with edgekit.vision.video.make_test_video(path)")
        n = self.decode_threads
        params = [cv2.CAP_PROP_N_THREADS, n] if n and hasattr(cv2, "CAP_PROP_N_THREADS") else []  # OpenCV >= 4.6
        cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            raise VideoSourceError(f"OpenCV could not decode {str(path)!r}; expected a video OpenCV's "
                                   "FFmpeg can read (.mp4 with mp4v/H.264, .avi with MJPG)")
        self._cap = cap
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None  # an estimate from the container

    def _open_folder(self, path: Path) -> None:
        if not path.is_dir():
            raise VideoSourceError(f"folder://{path}: no such folder (looked from {Path.cwd()})")
        self._files = image_files(path)
        if not self._files:
            raise VideoSourceError(f"folder://{path} holds no images (expected {', '.join(IMAGE_SUFFIXES)})")
        first = self._image(0)
        self.fps, self.frame_count = 30.0, len(self._files)
        self.size = (first.shape[1], first.shape[0])

    def _image(self, i: int) -> np.ndarray:
        try:
            return load_image(self._files[i], "bgr")  # BGR, 3 channels, like a camera's frames
        except EdgekitError as exc:
            raise VideoSourceError(f"folder:// frame {i}: {exc}") from None

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end of the source."""
        i = self._next
        if self._synth is not None:
            if i >= self._synth.frames:
                return None
            if self.live:  # pace like a camera: frame i is not ready before i / fps
                delay = self._t0 + i / self.fps - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            image = self._synth.frame(i)
        elif self._files is not None:
            if i >= len(self._files):
                return None
            image = self._image(i)
        elif self._cap is not None:
            ok, image = self._cap.read()
            if not ok:
                return None
        else:
            return None  # closed
        self._next += 1
        # A camera's frames carry wall-clock time; recorded and generated ones carry media time.
        stamp = time.perf_counter() - self._t0 if self._cap is not None and self.frame_count is None else i / self.fps
        return Frame(i, stamp, image)

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        """Release the camera or file; further reads return ``None``."""
        if self._cap is not None:
            self._cap.release()
        self._cap = self._files = self._synth = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        count = "live" if self.frame_count is None else f"{self.frame_count} frames"
        return f"VideoSource({self.uri!r}, {self.size[0]}x{self.size[1]} @ {self.fps:g} fps, {count})"


def make_test_video(path: str | os.PathLike, *, frames: int = 120, fps: float = 30,
                    size: tuple[int, int] = (320, 240), pattern: str = "face") -> Path:
    """Write the synthetic clip to ``path`` (``.mp4`` with mp4v, ``.avi`` with MJPG); return the path.

    >>> import tempfile
    >>> p = make_test_video(Path(tempfile.mkdtemp()) / "clip.mp4", frames=5, size=(64, 48))
    >>> VideoSource(p).frame_count
    5
    """
    path = Path(path)
    if path.suffix.lower() not in FOURCCS:
        raise VideoSourceError(f"make_test_video writes .mp4 or .avi, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    synth = _Synthetic(frames, fps, tuple(size), pattern)
    with atomic_path(path) as tmp:  # a reader never sees half a clip
        writer = open_writer(tmp, fps, synth.size)
        try:
            for i in range(frames):
                writer.write(synth.frame(i))
        finally:
            writer.release()
    return path


def open_writer(path: str | os.PathLike, fps: float, size: tuple[int, int]):
    """A ``cv2.VideoWriter`` for ``path`` with the first codec this OpenCV build can open."""
    import cv2

    suffix = Path(path).suffix.lower()
    for code in FOURCCS.get(suffix, ()):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*code), float(fps), tuple(size))
        if writer.isOpened():
            return writer
        writer.release()
    raise VideoSourceError(f"OpenCV could not open a video writer for {Path(path).name!r} "
                           f"(tried {FOURCCS.get(suffix, ())}); expected a .mp4 or .avi path")


def cache_dir() -> Path:
    """Where generated clips are cached: ``videos/`` in edgekit's cache (:func:`edgekit._paths.cache_dir`)."""
    return _paths.cache_dir("videos")


def sample_video(frames: int = 300, fps: float = 30, size: tuple[int, int] = (640, 480)) -> Path:
    """The synthetic face clip as an .mp4, generated once into :func:`cache_dir` and reused."""
    path = cache_dir() / f"synthetic-face-{size[0]}x{size[1]}-{frames}f-{fps:g}fps.mp4"
    if not path.is_file():
        make_test_video(path, frames=frames, fps=fps, size=size)
    return path
