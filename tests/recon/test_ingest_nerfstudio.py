import json

import cv2
import numpy as np
import pytest
from test_ingest_support import FOX, Recorder, captures_listing, write_png

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import ingest

FOX_MISSING = ["0005", "0016", "0017", "0024", "0032", "0051", "0068", "0071", "0075", "0083", "0087", "0088",
               "0093", "0099", "0104", "0106", "0113"]  # fmt: skip


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _pose_gl(position, rotation=np.eye(3)):
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = position
    return m.tolist()


def _dataset(root, frames, **top):
    root.mkdir(parents=True, exist_ok=True)
    data = {"fl_x": 20.0, "fl_y": 21.0, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12, **top, "frames": frames}
    (root / "transforms.json").write_text(json.dumps(data))
    return root


def test_fox_skips_the_17_missing_frames_with_a_warning_each(ws):
    if not FOX.is_dir():
        pytest.skip("shared data not present")
    rec = Recorder()
    cap = ingest(FOX, ws, progress=rec.progress())
    m = cap.load()
    assert len(m.frames) == 50 and m.scale == "unscaled" and m.source["kind"] == "transforms"
    assert len(rec.warnings) == 17
    for name, warning in zip(FOX_MISSING, rec.warnings, strict=True):
        assert f"images/{name}.jpg" in warning
    assert {f.source_name for f in m.frames}.isdisjoint({f"{n}.jpg" for n in FOX_MISSING})
    tf = json.loads((FOX / "transforms.json").read_text())
    first = m.frames[0]
    assert first.source_name == "0001.jpg" and first.image == "images/0001.jpg"
    expected = np.asarray(tf["frames"][0]["transform_matrix"]) @ np.diag([1.0, -1.0, -1.0, 1.0])
    np.testing.assert_allclose(np.asarray(first.pose), expected, atol=1e-12)
    cam = first.camera
    assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (
        1080,
        1920,
        1375.52,
        1374.49,
        554.558,
        965.268,
    )
    assert cam.model == "OPENCV" and cam.distortion == (0.0578421, -0.0805099, -0.000980296, 0.00015575)
    assert (cap.root / "images" / "0001.jpg").read_bytes() == (FOX / "images" / "0001.jpg").read_bytes()
    assert (cap.raw_dir / "transforms.json").read_bytes() == (FOX / "transforms.json").read_bytes()


def test_poses_become_opencv_and_depth_masks_and_per_frame_intrinsics_are_kept(tmp_path, ws):
    root = tmp_path / "ds"
    for i in range(3):
        write_png(root / "images" / f"f{i}.png", 16, 12, seed=i)
    depth_mm = np.full((6, 8), 1500, np.uint16)  # half resolution, millimetres
    (root / "depth").mkdir()
    cv2.imwrite(str(root / "depth" / "f0.png"), depth_mm)
    np.save(root / "depth" / "f1.npy", np.full((6, 8), 2500.0, np.float32))  # also in depth units (mm)
    mask = np.zeros((12, 16), np.uint8)
    mask[2:5, 3:9] = 1
    (root / "masks").mkdir()
    cv2.imwrite(str(root / "masks" / "f0.png"), mask)
    # A camera 3 units up the +z axis, OpenGL axes: it looks down -z, at the origin.
    frames = [
        {"file_path": "images/f0.png", "transform_matrix": _pose_gl([0, 0, 3]),
         "depth_file_path": "depth/f0.png", "mask_path": "masks/f0.png"},
        {"file_path": "images/f1.png", "transform_matrix": _pose_gl([1, 0, 3]),
         "depth_file_path": "depth/f1.npy"},
        {"file_path": "images/f2.png", "transform_matrix": _pose_gl([2, 0, 3]), "fl_x": 30.0,
         "depth_file_path": "depth/gone.png"},
    ]  # fmt: skip
    rec = Recorder()
    cap = ingest(_dataset(root, frames) / "transforms.json", ws, progress=rec.progress())
    m = cap.load()
    assert m.name == "ds"
    f0, f1, f2 = m.frames
    pose = np.asarray(f0.pose)
    origin_in_camera = np.linalg.inv(pose) @ np.array([0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(origin_in_camera[:3], [0.0, 0.0, 3.0])  # in front: OpenCV z forward
    np.testing.assert_allclose(pose[:3, 1], [0.0, -1.0, 0.0])  # camera y points down in the world
    assert f0.depth == "depth/f0.png" and f0.depth_scale == pytest.approx(0.001)
    assert (cv2.imread(str(cap.root / f0.depth), cv2.IMREAD_UNCHANGED) == 1500).all()
    assert f1.depth == "depth/f1.png" and f1.depth_scale == pytest.approx(0.001)
    d1 = cv2.imread(str(cap.root / f1.depth), cv2.IMREAD_UNCHANGED)
    assert d1.dtype == np.uint16 and (d1 == 2500).all()
    m0 = cv2.imread(str(cap.root / f0.mask), cv2.IMREAD_UNCHANGED)
    assert m0.shape == (12, 16) and m0[3, 4] == 255 and m0[0, 0] == 0
    assert (f0.camera.fx, f0.camera.fy, f2.camera.fx, f2.camera.fy) == (20.0, 21.0, 30.0, 21.0)
    assert f0.camera.model == "PINHOLE"
    assert f2.depth is None and any("depth/gone.png" in w for w in rec.warnings)


def test_blender_style_paths_and_camera_angle(tmp_path, ws):
    root = tmp_path / "lego"
    write_png(root / "train" / "r_0.png", 16, 12)
    (root / "transforms.json").write_text(json.dumps({
        "camera_angle_x": 2 * np.arctan(0.5),  # fx == width
        "frames": [{"file_path": "./train/r_0", "transform_matrix": _pose_gl([0, 0, 4])}],
    }))  # fmt: skip
    m = ingest(root, ws).load()
    cam = m.frames[0].camera
    assert (cam.width, cam.height) == (16, 12) and cam.fx == pytest.approx(16.0) and cam.cx == 8.0


@pytest.mark.parametrize(
    "top,frame_extra,where",
    [
        ({"fl_x": "big"}, {}, "fl_x"),
        ({"camera_model": "EQUIRECTANGULAR"}, {}, "camera_model"),  # fisheye is read (test_fisheye)
        ({}, {"transform_matrix": [[1, 0, 0], [0, 1, 0]]}, "transform_matrix"),
        ({"w": 32}, {}, "f0.png"),  # intrinsics for another size
    ],
)
def test_bad_fields_are_one_error_naming_them(tmp_path, ws, top, frame_extra, where):
    root = tmp_path / "ds"
    write_png(root / "images" / "f0.png", 16, 12)
    _dataset(
        root, [{"file_path": "images/f0.png", "transform_matrix": _pose_gl([0, 0, 1]), **frame_extra}], **top
    )
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert where in e.value.where
    assert captures_listing(ws) == []


def test_all_images_missing_or_broken_json(tmp_path, ws):
    root = _dataset(
        tmp_path / "ds", [{"file_path": "images/nope.png", "transform_matrix": _pose_gl([0, 0, 1])}]
    )
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert e.value.where == str(root / "transforms.json")
    (root / "transforms.json").write_text("{ not json")
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert e.value.where == str(root / "transforms.json") and "line 1" in e.value.reason
    assert captures_listing(ws) == []
