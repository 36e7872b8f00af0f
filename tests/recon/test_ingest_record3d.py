"""Record3D "EXR + JPG" exports, written here in that layout (no sample export is available)."""

import json
import math
import os

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # before OpenCV's first EXR call

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_ingest_support import Recorder, captures_listing, write_jpeg  # noqa: E402

from core.errors import IngestError  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from recon.ingest import ingest  # noqa: E402

W, H, DW, DH = 32, 24, 8, 6
K_COLUMN_MAJOR = [30.0, 0.0, 0.0, 0.0, 30.0, 0.0, 16.0, 12.0, 1.0]
S45 = math.sqrt(0.5)
# ARKit poses [qx, qy, qz, qw, tx, ty, tz]: frame 0 looks down -z at a wall 2 m away (z = -2);
# frame 1 is turned 90 degrees left about y, so it looks down -x at a wall 3 m away (x = -3).
POSES = [[0, 0, 0, 1, 0, 0, 0], [0, S45, 0, S45, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]]
DEPTHS = [2.0, 3.0]


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _export(root, layout="rgbd", per_frame_k=False):
    colour_dir, depth_dir = ("rgbd", "rgbd") if layout == "rgbd" else ("rgb", "depth")
    (root / colour_dir).mkdir(parents=True)
    (root / depth_dir).mkdir(exist_ok=True)
    meta = {"w": W, "h": H, "dw": DW, "dh": DH, "fps": 30, "poses": POSES, "K": K_COLUMN_MAJOR}
    if per_frame_k:
        meta["perFrameIntrinsicCoeffs"] = [[30.0, 30.0, 16.0, 12.0]] * len(POSES)
        del meta["K"]
    (root / ("metadata.json" if layout == "rgbd" else "metadata")).write_text(json.dumps(meta))
    for i in range(3):  # frame 3 has no files at all
        write_jpeg(root / colour_dir / f"{i}.jpg", W, H, seed=i)
    for i, d in enumerate(DEPTHS):  # frame 2 has colour only
        depth = np.full((DH, DW), d, np.float32)
        depth[0, 0] = np.nan  # no measurement
        assert cv2.imwrite(str(root / depth_dir / f"{i}.exr"), depth)
    return root


@pytest.mark.parametrize("layout,per_frame_k", [("rgbd", False), ("rgb+depth", True)])
def test_record3d_export_depth_in_mm_and_poses_in_opencv_axes(tmp_path, ws, layout, per_frame_k):
    root = _export(tmp_path / "EXR_RGBD", layout, per_frame_k)
    rec = Recorder()
    cap = ingest(root, ws, progress=rec.progress())
    m = cap.load()
    assert m.mode == "rgbd" and m.scale == "metric" and m.source["kind"] == "record3d"
    assert [f.id for f in m.frames] == ["000000", "000001", "000002"]
    assert len(rec.warnings) == 1 and "frame 3" in rec.warnings[0]
    cam = m.frames[0].camera
    assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (W, H, 30.0, 30.0, 16.0, 12.0)
    assert m.frames[2].depth is None and m.frames[2].image == "images/2.jpg"
    assert m.frames[1].timestamp == pytest.approx(1 / 30)
    for frame, wall in zip(m.frames[:2], DEPTHS, strict=True):
        depth_mm = cv2.imread(str(cap.root / frame.depth), cv2.IMREAD_UNCHANGED)
        assert depth_mm.dtype == np.uint16 and depth_mm.shape == (DH, DW)
        assert depth_mm[0, 0] == 0 and (depth_mm.ravel()[1:] == round(wall * 1000)).all()
        # Back-project with the manifest's OpenCV pose: the points land on the wall.
        c = frame.camera.scaled(DW, DH)
        v, u = np.mgrid[0:DH, 0:DW]
        z = depth_mm * frame.depth_scale
        pts = np.stack([(u - c.cx) / c.fx * z, (v - c.cy) / c.fy * z, z], -1)[z > 0]
        pose = np.asarray(frame.pose)
        world = pts @ pose[:3, :3].T + pose[:3, 3]
        axis = 2 if frame.id == "000000" else 0
        np.testing.assert_allclose(world[:, axis], -wall, atol=1e-3)
    # Up in the picture is up in the world (ARKit world y is up; OpenCV image y is down).
    np.testing.assert_allclose(np.asarray(m.frames[0].pose)[:3, 1], [0, -1, 0], atol=1e-12)


def test_colour_at_another_size_scales_the_intrinsics(tmp_path, ws):
    root = _export(tmp_path / "exp")
    for i in range(3):
        write_jpeg(root / "rgbd" / f"{i}.jpg", W // 2, H // 2, seed=i)
    cam = ingest(root, ws).load().frames[0].camera
    assert (cam.width, cam.height, cam.fx, cam.cx) == (W // 2, H // 2, 15.0, 8.0)


@pytest.mark.parametrize(
    "change,where",
    [
        (lambda meta: meta["poses"][1].pop(), "poses[1]"),
        (lambda meta: meta.update(K=[1, 2, 3]), "K"),
        (lambda meta: meta.update(w="wide"), "w"),
    ],
)
def test_bad_metadata_is_one_error_naming_the_field(tmp_path, ws, change, where):
    root = _export(tmp_path / "exp")
    meta = json.loads((root / "metadata.json").read_text())
    change(meta)
    (root / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert e.value.where.endswith(f"metadata.json: {where}")
    assert captures_listing(ws) == []


def test_corrupt_exr_names_the_file(tmp_path, ws):
    root = _export(tmp_path / "exp")
    (root / "rgbd" / "1.exr").write_bytes(b"v/1\x01 not really an exr")
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert e.value.where == str(root / "rgbd" / "1.exr")
    assert captures_listing(ws) == []
