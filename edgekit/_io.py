"""Files written whole or not at all, and the sha256 of a file: the one copy of each for edgekit.

A reader (another process, a grading run resumed after a kill, ``edgekit report`` on a suite
still running) must see the old file or the new one, never half of one. So every write goes to a
temporary file in the target's folder (the same file system: ``os.replace`` is then atomic) under a
name no other writer can pick — two threads or processes writing one target each get their own —
is flushed to disk with ``fsync``, and is renamed onto the target. The last rename wins.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "r.json"
>>> atomic_write(p, '{"ok": 1}') == p, p.read_text(), file_sha256(p)[:12]
(True, '{"ok": 1}', '805e2deeb05e')
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh, empty temporary path beside ``path`` (same suffix, so writers that pick a
    format by suffix still do); when the block ends cleanly it is synced and renamed onto ``path``,
    and when it raises it is removed. For writers that want a path (``cv2.VideoWriter``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_beside(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` (text as ``encoding``, or bytes) to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)
    return path


def _create_beside(path: Path) -> Path:
    import uuid  # here, not at the top: edgekit.load(path) imports this module and needs none of it

    # O_EXCL: the name is ours alone even if a uuid ever repeated; mode 0o666 lets the umask decide
    # the file's permissions, as a plain open() would (mkstemp's 0o600 would hide results from others).
    while True:
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (a model may not fit in memory twice)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
