import tracemalloc

import cv2
import numpy as np
import pytest
from test_ingest_support import Recorder, captures_listing, pattern

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import ingest
from recon.ingest.video import sharpness

SHARP = (3, 17, 22, 38)  # one sharp frame in each quarter of a 40-frame clip


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _write_video(path, n=40, sharp=SHARP, size=(96, 64), fourcc="mp4v"):
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (w, h))
    assert writer.isOpened()
    base = cv2.cvtColor(pattern(w + 40, h, seed=7), cv2.COLOR_RGB2BGR)
    for i in range(n):
        frame = np.ascontiguousarray(base[:, i % 40 : i % 40 + w])  # a slow pan
        if i not in sharp:
            frame = cv2.GaussianBlur(frame, (0, 0), 2.5)
        writer.write(frame)
    writer.release()
    return path


def test_sharpest_frame_of_each_time_window_is_kept(tmp_path, ws):
    video = _write_video(tmp_path / "orbit.mp4")
    rec = Recorder()
    cap = ingest(video, ws, target_frames=4, progress=rec.progress())
    m = cap.load()
    assert m.source["kind"] == "video" and m.source["video_frames"] == 40 and m.mode == "import"
    assert [f.image for f in m.frames] == [f"images/frame_{i:06d}.jpg" for i in SHARP]
    assert [f.timestamp for f in m.frames] == pytest.approx([i / 10.0 for i in SHARP])
    cam = m.frames[0].camera
    assert (cam.width, cam.height) == (96, 64)
    first = cv2.imread(str(cap.root / m.frames[0].image))
    assert first.shape == (64, 96, 3)
    assert (cap.raw_dir / "orbit.mp4").read_bytes() == video.read_bytes()
    assert rec.events[-1].kind == "log"


def test_short_video_keeps_every_frame(tmp_path, ws):
    video = _write_video(tmp_path / "short.avi", n=5, sharp=(), fourcc="MJPG")
    m = ingest(video, ws, target_frames=150).load()
    assert [f.image for f in m.frames] == [f"images/frame_{i:06d}.jpg" for i in range(5)]


def test_sharpness_prefers_the_unblurred_frame():
    img = pattern(640, 480, seed=1)
    assert sharpness(img) > 3 * sharpness(cv2.GaussianBlur(img, (0, 0), 2.0))


@pytest.mark.parametrize("fourcc,suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_truncated_video_is_one_error_naming_it(tmp_path, ws, fourcc, suffix):
    video = _write_video(tmp_path / f"clip{suffix}", fourcc=fourcc)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError) as e:
        ingest(video, ws, target_frames=4)
    assert e.value.where == str(video)
    assert captures_listing(ws) == []


def test_garbage_video_is_one_error_naming_it(tmp_path, ws):
    video = tmp_path / "holiday.mov"
    video.write_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(range(256)) * 8)
    with pytest.raises(IngestError) as e:
        ingest(video, ws)
    assert e.value.where == str(video)
    assert captures_listing(ws) == []


def test_memory_stays_flat_while_streaming_a_longer_video(tmp_path, ws):
    # 200 frames of 320x240 are 46 MB decoded; streaming holds about two at a time.
    video = _write_video(tmp_path / "long.mp4", n=200, sharp=(), size=(320, 240))
    tracemalloc.start()
    try:
        m = ingest(video, ws, target_frames=3).load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(m.frames) == 3
    assert peak < 10 * 320 * 240 * 3  # well under the 200 frames a non-streaming reader would hold
