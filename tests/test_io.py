"""edgekit._io (atomic writes, sha256 of a file) and edgekit._paths' cache rule."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from pathlib import Path

import pytest

from edgekit import _paths
from edgekit._io import atomic_path, atomic_write, file_sha256

PAYLOADS = [bytes([65 + i]) * (1 << 20) for i in range(4)]  # 1 MiB each: a torn write shows as mixed bytes


def _writer(path: str, payload: bytes, times: int) -> None:
    for _ in range(times):
        atomic_write(path, payload)


def _start(kind: str, target, args):
    if kind == "thread":
        return threading.Thread(target=target, args=args)
    return multiprocessing.get_context("fork").Process(target=target, args=args)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_concurrent_writers_of_one_target_leave_a_whole_file(tmp_path, kind):
    target = tmp_path / "result.json"
    atomic_write(target, PAYLOADS[0])
    writers = [_start(kind, _writer, (str(target), p, 15)) for p in PAYLOADS]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        data = target.read_bytes()  # a reader at any moment sees one writer's whole payload
        assert data in PAYLOADS, f"torn file: {len(data)} bytes, first {data[:1]!r}, last {data[-1:]!r}"
    for w in writers:
        w.join()
    assert target.read_bytes() in PAYLOADS
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"], "a temporary file was left behind"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = atomic_write(tmp_path / "clip.mp4", b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp != target
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer died")
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_text_is_written_in_the_encoding_asked(tmp_path):
    p = atomic_write(tmp_path / "sub" / "a.txt", "café", encoding="latin-1")
    assert p.read_bytes() == "café".encode("latin-1")


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 9000  # > 1 MiB: more than one block
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


def test_one_cache_rule_for_every_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path))
    assert {k: _paths.cache_dir(k) for k in _paths.CACHE_KINDS} == {k: tmp_path / k for k in _paths.CACHE_KINDS}
    assert _paths.cache_dir() == tmp_path / "models" and _paths.cache_root() == tmp_path
    from edgekit.runtime import providers, zoo
    from edgekit.vision import video

    assert zoo.location("mobilenetv2-224").parent == tmp_path / "models"
    assert video.cache_dir() == tmp_path / "videos"
    assert providers.tensorrt_options()["trt_engine_cache_path"] == str(tmp_path / "tensorrt")
    with pytest.raises(ValueError, match="cache kind must be one of"):
        _paths.cache_dir("weights")


def test_cache_root_defaults_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_paths.sys, "platform", "linux")
    assert _paths.cache_dir("videos") == Path(tmp_path) / "edgekit" / "videos"
