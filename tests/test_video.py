"""edgekit.vision.video: every URI kind, the synthetic generator's determinism, errors that teach."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgekit import EdgekitError
from edgekit.vision.video import Frame, VideoSource, VideoSourceError, make_test_video, sample_video

URI = "synthetic://?frames=12&fps=25&size=96x64"


def frames_of(uri) -> list[Frame]:
    with VideoSource(uri) as src:
        return list(src)


def frames_of_source(src: VideoSource) -> list[Frame]:
    with src:
        return list(src)


def test_synthetic_is_deterministic_and_moves():
    a, b = frames_of(URI), frames_of(URI)
    assert [f.index for f in a] == list(range(12))
    assert [f.timestamp for f in a] == pytest.approx([i / 25 for i in range(12)])
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.image, fb.image)
    assert a[0].image.shape == (64, 96, 3) and a[0].image.dtype == np.uint8
    assert not np.array_equal(a[0].image, a[6].image), "the face should move between frames"


def test_synthetic_properties_and_patterns():
    src = VideoSource("synthetic://?frames=5&fps=10&size=80x60&pattern=disc")
    assert (src.fps, src.size, src.frame_count, src.live) == (10.0, (80, 60), 5, False)
    disc = src.read().image
    assert disc.max() == 255, f"the disc is white; brightest pixel {disc.max()}"
    assert VideoSource("synthetic://?realtime=1&frames=2").live
    assert "80x60" in repr(src)


def test_close_and_context_manager():
    with VideoSource(URI) as src:
        assert src.read() is not None
    assert src.read() is None, "a closed source reads nothing"


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_file_round_trip(tmp_path, suffix):
    path = make_test_video(tmp_path / f"clip{suffix}", frames=12, fps=25, size=(96, 64))
    original = frames_of(URI)
    for uri in (f"file://{path}", str(path)):  # a URI or a bare path
        got = frames_of(uri)
        assert len(got) == 12, f"{uri}: {len(got)} frames back from 12 written"
        assert got[0].image.shape == (64, 96, 3)
        # lossy codecs: close to the generator's frames, not equal
        err = max(np.abs(g.image.astype(int) - o.image.astype(int)).mean() for g, o in zip(got, original))
        assert err < 12, f"mean abs difference {err:.1f} after {suffix} encoding"
    src = VideoSource(path)
    assert src.fps == pytest.approx(25) and src.size == (96, 64) and src.frame_count == 12
    one = frames_of_source(VideoSource(path, decode_threads=1))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(one, frames_of(path))), "threads change speed only"
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file was renamed into place"


def test_folder_is_sorted_and_lossless(tmp_path):
    for name, value in (("b.png", 20), ("a.png", 10), ("c.png", 30)):
        img = np.zeros((8, 10, 3), np.uint8)
        img[..., 2] = value  # the red channel in OpenCV's BGR order
        cv2.imwrite(str(tmp_path / name), img)
    (tmp_path / "notes.txt").write_text("not an image")
    for uri in (f"folder://{tmp_path}", str(tmp_path)):
        got = frames_of(uri)
        assert [int(f.image[0, 0, 2]) for f in got] == [10, 20, 30], "sorted by name, BGR kept"
    assert VideoSource(f"folder://{tmp_path}").size == (10, 8)


@pytest.mark.parametrize("uri, words", [
    ("rtsp://example/stream", ["unknown video source scheme", "synthetic://"]),
    ("synthetic://?frames=0", ["frames >= 1"]),
    ("synthetic://?size=big", ["size=WxH"]),
    ("synthetic://?colour=red", ["unknown option", "colour"]),
    ("synthetic://?pattern=cat", ["'face' or 'disc'"]),
    ("no/such/clip.mp4", ["no video file", "make_test_video"]),
    ("camera://front", ["camera index"]),
    ("folder://no/such/dir", ["no such folder"]),
])
def test_bad_uris_teach(uri, words):
    with pytest.raises(VideoSourceError) as info:
        VideoSource(uri)
    assert isinstance(info.value, EdgekitError)
    for w in words:
        assert w in str(info.value), f"{w!r} missing from: {info.value}"


def test_empty_folder_and_undecodable_file(tmp_path):
    with pytest.raises(VideoSourceError, match="holds no images"):
        VideoSource(f"folder://{tmp_path}")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoSourceError, match="could not decode"):
        VideoSource(bad)


def test_missing_camera_suggests_a_file_or_the_generator():
    with pytest.raises(VideoSourceError) as info:
        VideoSource("camera://99")
    msg = str(info.value)
    assert "no camera at index 99" in msg and "file://" in msg and "synthetic://" in msg, msg


def test_make_test_video_wants_a_known_suffix(tmp_path):
    with pytest.raises(VideoSourceError, match=".mp4 or .avi"):
        make_test_video(tmp_path / "clip.gif")


def test_sample_video_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path))
    path = sample_video(frames=6, size=(64, 48))
    assert path.parent == tmp_path / "videos" and path.suffix == ".mp4"
    stamp = path.stat().st_mtime_ns
    assert sample_video(frames=6, size=(64, 48)) == path and path.stat().st_mtime_ns == stamp, "reused, not rewritten"
    assert VideoSource(path).frame_count == 6
