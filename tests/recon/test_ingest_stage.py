"""The in-place ``ingest`` stage: files that arrived in raw/ (as a phone uploads them) become the
capture's frames; raw/ is left byte for byte as it was; bad files change nothing."""

import hashlib
import shutil

import cv2
import numpy as np
import pytest

from core.capture import CaptureFolder, Manifest, utc_now
from core.errors import IngestError
from core.stages import execute_stage
from core.workspace import Workspace
from recon.sample import render_orbit


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    views = render_orbit(12, (480, 360))
    for k, i in enumerate((0, 6, 1, 7, 2, 8)):  # 30 degree steps, alternating rings
        # Phone browsers name every photo image.jpg; the server keeps them apart.
        cv2.imwrite(str(folder / ("image.jpg" if k == 0 else f"image-{k + 1}.jpg")), views[i].rgb[:, :, ::-1])
    return sorted(folder.iterdir())


def uploaded_capture(tmp_path, files, mode="free") -> CaptureFolder:
    """A capture as the server leaves it at finish: a manifest without frames, files in raw/."""
    ws = Workspace(tmp_path / "ws")
    cid = ws.new_capture_id("phone")
    capture = CaptureFolder(ws.captures_dir / cid)
    capture.raw_dir.mkdir(parents=True)
    for f in files:
        shutil.copy(f, capture.raw_dir / f.name)
    capture.save(Manifest(id=cid, name="phone", created=utc_now(), mode=mode, status="processing",
                          source={"device": {"app": "test"}, "files": [f.name for f in files]}))
    return capture


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_uploaded_photos_become_frames_and_raw_is_untouched(tmp_path, photos):
    capture = uploaded_capture(tmp_path, photos)
    before = digest(capture.raw_dir)
    out = execute_stage(capture, "ingest")
    manifest = capture.load()
    assert out.result["frames"] == len(photos) == len(manifest.frames)
    assert out.result["kind"] == "images" and out.result["skipped"] == []
    assert {f.source_name for f in manifest.frames} == {p.name for p in photos}
    assert all(capture.path(f.image).is_file() for f in manifest.frames)
    assert manifest.status == "processing" and manifest.mode == "free"
    assert manifest.source["device"] == {"app": "test"} and manifest.source["kind"] == "images"
    assert digest(capture.raw_dir) == before
    assert not (out.run_dir / "staging").exists()
    # The frames are ready for the photo plan: SfM registers them.
    poses = execute_stage(capture, "poses", {"max_image_size": 480, "matcher": "exhaustive"})
    assert poses.result["registered"] == len(photos)


def test_a_video_in_a_photo_set_is_left_out_and_said_so(tmp_path, photos):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 100)
    capture = uploaded_capture(tmp_path, [*photos[:3], clip])
    out = execute_stage(capture, "ingest")
    assert out.result["frames"] == 3
    assert out.result["skipped"] == ["clip.mp4: a video in a photo set (upload it as its own capture)"]


def test_a_single_uploaded_video_is_read_as_a_video(tmp_path, photos):
    clip = tmp_path / "walk.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 360))
    for p in photos:
        for _ in range(3):
            writer.write(cv2.imread(str(p)))
    writer.release()
    capture = uploaded_capture(tmp_path, [clip])
    out = execute_stage(capture, "ingest", {"target_frames": 4})
    assert out.result["kind"] == "video" and 1 <= out.result["frames"] <= 4
    assert len(capture.load().frames) == out.result["frames"]


def test_a_corrupt_upload_is_one_error_and_changes_nothing(tmp_path, photos):
    broken = tmp_path / "image-9.jpg"
    broken.write_bytes(photos[0].read_bytes()[:200])  # a truncated JPEG
    capture = uploaded_capture(tmp_path, [*photos[:2], broken])
    manifest = capture.manifest_path.read_bytes()
    with pytest.raises(IngestError) as e:
        execute_stage(capture, "ingest")
    assert "image-9.jpg" in str(e.value.where)
    assert capture.manifest_path.read_bytes() == manifest
    assert not capture.images_dir.exists()


def test_nothing_uploaded_is_an_error_and_frames_already_there_are_kept(tmp_path, photos):
    empty = uploaded_capture(tmp_path / "a", [])
    with pytest.raises(IngestError, match="no uploaded files"):
        execute_stage(empty, "ingest")
    capture = uploaded_capture(tmp_path / "b", photos[:2])
    execute_stage(capture, "ingest")
    frames = capture.load().frames
    again = execute_stage(capture, "ingest", {"target_frames": 7})  # a new run: nothing more to read
    assert again.result["frames"] == 2 and capture.load().frames == frames
    assert np.all([capture.path(f.image).is_file() for f in frames])
