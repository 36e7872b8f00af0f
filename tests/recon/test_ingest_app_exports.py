"""Polycam, Record3D .r3d, COLMAP and Meshroom exports, each written here in that app's layout
from a ray-cast orbit of known geometry, read back into metric (or, for SfM tools, unscaled)
posed frames. Poses are checked against the truth they were written from, and depth against the
scene itself: back-projected through the manifest's pose it lands on the object or the ground."""

import json
import shutil
import zipfile

import cv2
import numpy as np
import pytest
from app_exports_kit import (
    DEPTH_SIZE,
    confidence_of,
    distance_to_scene,
    orbit,
    r3d_members,
    world_points,
    write_colmap,
    write_meshroom,
    write_polycam,
    write_r3d,
)
from test_ingest_support import Recorder, captures_listing

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import detect_source, ingest


@pytest.fixture(scope="module")
def views():
    return orbit(6)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _depth_m(cap, frame):
    raw = cv2.imread(str(cap.root / frame.depth), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    return raw.astype(np.float64) * frame.depth_scale


def _assert_posed_like(manifest, views, *, image_names=None):
    assert len(manifest.frames) == len(views)
    for frame, view in zip(manifest.frames, views, strict=True):
        np.testing.assert_allclose(np.asarray(frame.pose), view.c2w, atol=1e-9)
        cam = frame.camera
        assert (cam.width, cam.height) == (view.camera.width, view.camera.height)
        np.testing.assert_allclose([cam.fx, cam.fy, cam.cx, cam.cy],
                                   [view.camera.fx, view.camera.fy, view.camera.cx, view.camera.cy],
                                   rtol=1e-9)


def _assert_metric_depth_on_scene(cap, manifest, views):
    for frame, view in zip(manifest.frames, views, strict=True):
        depth = _depth_m(cap, frame)
        assert depth.shape == (DEPTH_SIZE[1], DEPTH_SIZE[0])
        np.testing.assert_allclose(depth, view.depth_m, atol=0.0006)  # millimetre rounding
        pts = world_points(depth, frame.camera, np.asarray(frame.pose))
        assert len(pts) > 0.3 * depth.size
        assert np.percentile(distance_to_scene(pts), 95) < 0.003


def test_polycam_raw_export_is_metric_rgbd_with_arkit_poses_and_lidar(tmp_path, ws, views):
    src = write_polycam(tmp_path / "polycam", views, confidence_255=True)
    assert detect_source(src)[0] == "polycam"
    cap = ingest(src, ws)
    m = cap.load()
    assert (m.source["kind"], m.scale, m.mode) == ("polycam", "metric", "rgbd")
    _assert_posed_like(m, views)
    _assert_metric_depth_on_scene(cap, m, views)
    for frame, view in zip(m.frames, views, strict=True):
        assert frame.image.startswith("images/") and frame.source_name.endswith(".jpg")
        conf = cv2.imread(str(cap.root / frame.confidence), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(conf, confidence_of(view.depth_m))  # 0/128/255 -> ARKit 0/1/2
    # Depth and confidence PNGs are the frames' maps, never photos of their own.
    assert sorted(p.name for p in cap.images_dir.iterdir()) == [f"{i:06d}.jpg" for i in range(6)]
    assert (cap.raw_dir / "keyframes" / "cameras").is_dir()


def test_polycam_bad_camera_field_names_the_file_and_field(tmp_path, ws, views):
    src = write_polycam(tmp_path / "polycam", views[:2])
    cam_json = sorted((src / "keyframes" / "cameras").iterdir())[1]
    cam_json.write_text(cam_json.read_text().replace('"t_13": ', '"t_13": 1e400, "was": '))
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert e.value.where == f"{cam_json}: t_13"
    assert captures_listing(ws) == []


@pytest.mark.parametrize("zipped", [True, False])
def test_record3d_r3d_is_metric_rgbd_with_lzfse_depth_and_confidence(tmp_path, ws, views, zipped):
    r3d = write_r3d(tmp_path / "scan.r3d", views)
    src = r3d
    if not zipped:
        src = tmp_path / "unzipped"
        with zipfile.ZipFile(r3d) as zf:
            zf.extractall(src)
    assert detect_source(src)[0] == "r3d"
    cap = ingest(src, ws)
    m = cap.load()
    assert (m.source["kind"], m.scale, m.mode) == ("r3d", "metric", "rgbd")
    _assert_posed_like(m, views)
    _assert_metric_depth_on_scene(cap, m, views)
    assert m.frames[1].timestamp == pytest.approx(10.0 + 1 / 60)
    for frame, view in zip(m.frames, views, strict=True):
        conf = cv2.imread(str(cap.root / frame.confidence), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(conf, confidence_of(view.depth_m))
    assert (cap.raw_dir / "scan.r3d").is_file() if zipped else (cap.raw_dir / "metadata").is_file()
    assert not any(p.name.startswith(".unpacked") for p in cap.root.iterdir())


def test_r3d_depth_that_declares_more_than_its_map_is_refused_before_decoding(tmp_path, ws, views):
    import liblzfse

    members = r3d_members(views[:2])
    block = liblzfse.compress(bytes(4_000_000))
    assert block.endswith(b"bvx$")
    members["rgbd/1.depth"] = block[:-4] * 50 + b"bvx$"  # 120 kB that would expand to 200 MB
    bomb = tmp_path / "bomb.r3d"
    with zipfile.ZipFile(bomb, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(IngestError) as e:
        ingest(bomb, ws)
    assert e.value.where == f"{bomb}: rgbd/1.depth" and "needs" in e.value.reason
    assert captures_listing(ws) == []


@pytest.mark.parametrize("text,old_layout,model", [(False, False, "PINHOLE"), (True, False, "PINHOLE"),
                                                   (False, True, "SIMPLE_RADIAL"), (True, True, "PINHOLE")])
def test_colmap_model_keeps_its_poses_and_intrinsics(tmp_path, ws, views, text, old_layout, model):
    src = write_colmap(tmp_path / "colmap", views, text=text, old_layout=old_layout, model=model)
    assert detect_source(src)[0] == "colmap"
    m = ingest(src, ws).load()
    assert (m.source["kind"], m.scale, m.source["format"]) == ("colmap", "unscaled", "txt" if text else "bin")
    _assert_posed_like(m, views)
    if model == "SIMPLE_RADIAL":
        assert m.frames[0].camera.model == "OPENCV" and m.frames[0].camera.distortion == (0.01, 0.0, 0.0, 0.0)
    assert [f.source_name for f in m.frames] == [f"frame_{i:03d}.jpg" for i in range(1, 7)]


def test_colmap_image_name_leaving_the_folder_is_refused(tmp_path, ws, views):
    src = write_colmap(tmp_path / "colmap", views[:2], text=True)
    outside = tmp_path / "secret.jpg"
    shutil.copy(src / "images" / "frame_001.jpg", outside)
    images_txt = src / "sparse" / "0" / "images.txt"
    images_txt.write_text(images_txt.read_text().replace("frame_001.jpg", "../../secret.jpg"))
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert "leaves the source's folder" in e.value.reason and "images.txt" in e.value.where
    assert captures_listing(ws) == []


def test_colmap_binary_count_larger_than_the_file_is_refused(tmp_path, ws, views):
    src = write_colmap(tmp_path / "colmap", views[:2])
    images_bin = src / "sparse" / "0" / "images.bin"
    data = bytearray(images_bin.read_bytes())
    data[0:8] = (10**15).to_bytes(8, "little")
    images_bin.write_bytes(bytes(data))
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert e.value.where == str(images_bin) and "more than the file" in e.value.reason


def test_meshroom_cameras_sfm_photos_found_by_name_not_by_absolute_path(tmp_path, ws, views):
    src = write_meshroom(tmp_path / "meshroom", views)
    assert detect_source(src)[0] == "meshroom"
    assert detect_source(src / "cameras.sfm")[0] == "meshroom"
    rec = Recorder()
    m = ingest(src / "cameras.sfm", ws, progress=rec.progress()).load()
    assert (m.source["kind"], m.scale, m.name) == ("meshroom", "unscaled", "meshroom")  # the folder's name
    assert m.source["posed"] == 6 and m.source["views"] == 7  # the unposed view is left out
    _assert_posed_like(m, views)
    assert [f.source_name for f in m.frames] == [f"IMG_{i:04d}.jpg" for i in range(1, 7)]


def _r3d_with(tmp_path, views, change):
    members = r3d_members(views[:2])
    change(members)
    path = tmp_path / "scan.r3d"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path, path


def _meta(members, edit):
    meta = json.loads(members["metadata"])
    edit(meta)
    members["metadata"] = json.dumps(meta).encode()


def _polycam_with(tmp_path, views, change):
    src = write_polycam(tmp_path / "polycam", views[:2])
    return src, change(src / "keyframes")


def _sfm_with(tmp_path, views, change):
    src = write_meshroom(tmp_path / "meshroom", views[:2])
    sfm = src / "cameras.sfm"
    sfm.write_text(change(sfm.read_text()))
    return src, sfm


def _colmap_txt_with(tmp_path, views, change):
    src = write_colmap(tmp_path / "colmap", views[:2], text=True)
    cameras = src / "sparse" / "0" / "cameras.txt"
    cameras.write_text("\n".join(change(line) if line.startswith("1 ") else line
                                 for line in cameras.read_text().splitlines()) + "\n")
    return src, cameras


def _polycam_nan(kf):
    cam = sorted((kf / "cameras").iterdir())[0]
    cam.write_text(cam.read_text().replace('"fx": ', '"fx": NaN, "was": '))
    return cam


def _polycam_symlink_out(kf):
    image = sorted((kf / "images").iterdir())[1]
    outside = kf.parent.parent / "elsewhere.jpg"
    shutil.copy(image, outside)
    image.unlink()
    image.symlink_to(outside)
    return image


def _polycam_huge_depth(kf):
    depth = sorted((kf / "depth").iterdir())[0]
    cv2.imwrite(str(depth), np.zeros((9000, 4), np.uint16))
    return depth


HOSTILE = {
    "polycam NaN focal": lambda t, v: _polycam_with(t, v, _polycam_nan),
    "polycam image symlink out": lambda t, v: _polycam_with(t, v, _polycam_symlink_out),
    "polycam 9000-pixel depth": lambda t, v: _polycam_with(t, v, _polycam_huge_depth),
    "r3d pose 1e400": lambda t, v: _r3d_with(t, v, lambda m: m.update(metadata=m["metadata"].replace(
        b'"poses": [[', b'"poses": [[1e400, '))),
    "r3d depth of another size": lambda t, v: _r3d_with(
        t, v, lambda m: _meta(m, lambda meta: meta.update(dw=33))),
    "r3d member leaving the zip": lambda t, v: _r3d_with(t, v, lambda m: m.update({"../evil": b"x"})),
    "r3d negative fps": lambda t, v: _r3d_with(t, v, lambda m: _meta(m, lambda meta: (
        meta.pop("frameTimestamps"), meta.update(fps=-1)))),
    "r3d principal point far away": lambda t, v: _r3d_with(
        t, v, lambda m: _meta(m, lambda meta: meta.update(K=[30, 0, 0, 0, 30, 0, 1e12, 24, 1]))),
    "colmap negative focal": lambda t, v: _colmap_txt_with(
        t, v, lambda s: s.replace("PINHOLE 64 48 ", "PINHOLE 64 48 -")),
    "colmap unsupported model": lambda t, v: _colmap_txt_with(  # fisheye models are read (test_fisheye)
        t, v, lambda s: s.replace("PINHOLE 64 48", "FOV 64 48") + " 0.5"),
    "meshroom nan focal": lambda t, v: _sfm_with(
        t, v, lambda s: s.replace('"focalLength": "', '"focalLength": "nan", "x": "')),
    "meshroom deep nesting": lambda t, v: _sfm_with(
        t, v, lambda s: s.replace('"poses": [', '"deep": ' + "[" * 5000 + "]" * 5000 + ', "poses": [')),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_exports_are_one_error_naming_the_users_file(tmp_path, ws, views, case):
    src, culprit = HOSTILE[case](tmp_path, views)
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert str(culprit) in str(e.value)
    assert captures_listing(ws) == []


def test_polycam_prefers_corrected_keyframes_and_is_found_inside_a_folder(tmp_path, ws, views):
    src = write_polycam(tmp_path / "download" / "My Scan 2026-12-01", views[:3])
    kf = src / "keyframes"
    shutil.copytree(kf / "images", kf / "corrected_images")
    shutil.copytree(kf / "cameras", kf / "corrected_cameras")
    for cam in (kf / "corrected_cameras").iterdir():  # Polycam's refined intrinsics
        data = json.loads(cam.read_text())
        data["fx"] *= 1.01
        cam.write_text(json.dumps(data))
    assert detect_source(tmp_path / "download") == ("polycam", src)
    m = ingest(tmp_path / "download", ws).load()
    assert m.source["corrected"] is True and len(m.frames) == 3
    assert m.frames[0].camera.fx == pytest.approx(views[0].camera.fx * 1.01)


def test_colmap_model_of_heic_photos_gets_jpeg_frames_of_the_same_pixels(tmp_path, ws, views):
    from PIL import Image

    src = write_colmap(tmp_path / "colmap", views[:2], ext=".heic")
    cap = ingest(src, ws)
    m = cap.load()
    _assert_posed_like(m, views[:2])
    for frame, view in zip(m.frames, views[:2], strict=True):
        with Image.open(cap.root / frame.image) as img:
            assert img.format == "JPEG" and img.size == (view.camera.width, view.camera.height)
            assert np.abs(np.asarray(img.convert("RGB")).astype(int) - view.rgb).mean() < 12


def test_an_uploaded_r3d_is_read_by_the_ingest_stage_into_metric_rgbd(tmp_path, views):
    from test_ingest_stage import digest, uploaded_capture

    from core.stages import execute_stage

    capture = uploaded_capture(tmp_path, [write_r3d(tmp_path / "phone" / "scan.r3d", views[:3])], mode="rgbd")
    before = digest(capture.raw_dir)
    out = execute_stage(capture, "ingest")
    m = capture.load()
    assert (out.result["kind"], m.scale, len(m.frames)) == ("r3d", "metric", 3)
    assert all(f.depth and f.confidence and f.pose for f in m.frames)
    assert digest(capture.raw_dir) == before
