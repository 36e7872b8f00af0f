"""The ``fusion`` stage over capture folders: a synthetic RGB-D orbit and the real Stray Scanner export."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest
from scipy.spatial import cKDTree

from core.capture import Frame, Manifest, utc_now
from core.errors import Cancelled, ConfigError, InputError, ReconstructionError
from core.progress import CancelToken
from core.stages import execute_stage, read_status
from core.workspace import Workspace
from recon.fusion.stage import FusionStageConfig
from recon.sample.scene import OBJECT_BOUNDS, distance_to_object, render_orbit

STAGE = "recon.fusion.stage:STAGE"
STRAY = Path(__file__).resolve().parents[3] / "shared" / "data" / "strayscanner-iphone-lidar-depthonly"
if not STRAY.is_dir():
    STRAY = Path("/work/shared/data/strayscanner-iphone-lidar-depthonly")
OBJECT = {"preset": "object", "min_weight": 1.0}


@pytest.fixture(scope="module")
def views():
    return render_orbit(12, (256, 192), elevations_deg=(5.0, 30.0, 60.0), radius_m=0.5)


def make_capture(root: Path, views, *, scale: str = "metric", pose_of=None, extra: tuple[Frame, ...] = ()):
    """A capture with images, 16-bit mm depth (object only), confidence 2 and the render's poses."""
    ws = Workspace(root)
    cid = ws.new_capture_id("orbit")
    with ws.staged_capture(cid) as cap:
        for d in (cap.images_dir, cap.depth_dir, cap.confidence_dir):
            d.mkdir()
        frames = []
        for i, v in enumerate(views):
            name = f"{i:06d}"
            depth_mm = np.round(np.where(v.mask, v.depth_m, 0.0) * 1000.0).astype(np.uint16)
            cv2.imwrite(str(cap.depth_dir / f"{name}.png"), depth_mm)
            cv2.imwrite(str(cap.confidence_dir / f"{name}.png"), np.full(depth_mm.shape, 2, np.uint8))
            cv2.imwrite(str(cap.images_dir / f"{name}.png"), cv2.cvtColor(v.rgb, cv2.COLOR_RGB2BGR))
            pose = pose_of(i, v.c2w) if pose_of else v.c2w
            frames.append(Frame(
                id=name, camera=v.camera, image=f"images/{name}.png",
                pose=tuple(tuple(float(x) for x in row) for row in pose),
                depth=f"depth/{name}.png", depth_scale=0.001, confidence=f"confidence/{name}.png",
            ))
        cap.save(Manifest(id=cid, name="orbit", created=utc_now(), mode="rgbd",
                          frames=tuple(frames) + extra, status="ingested", scale=scale))
    return ws.capture(cid)


def test_fuses_an_orbit_into_mesh_and_points(tmp_path, views):
    no_pose = Frame(id="nopose", camera=views[0].camera, depth="depth/000000.png")
    no_depth = Frame(id="nodepth", camera=views[0].camera, image="images/000000.png",
                     pose=tuple(tuple(r) for r in np.eye(4).tolist()))
    cap = make_capture(tmp_path, views, extra=(no_pose, no_depth))
    events = []
    out = execute_stage(cap, STAGE, OBJECT, sink=events.append)
    r = out.result
    assert r["frames_total"] == len(views) + 2 and r["frames_used"] == len(views)
    assert r["skipped_by_reason"] == {"no pose": 1, "no depth map": 1}
    assert {e["frame"] for e in r["skipped_examples"]} == {"nopose", "nodepth"}
    assert r["colored"] is True and r["files"] == ["mesh.ply", "points.ply"]

    mesh = o3d.io.read_triangle_mesh(str(out.run_dir / "mesh.ply"))
    assert len(mesh.vertices) == r["vertices"] and len(mesh.triangles) == r["triangles"] > 1000
    assert mesh.has_vertex_colors() and mesh.has_vertex_normals()
    verts = np.asarray(mesh.vertices)
    assert np.percentile(distance_to_object(verts), 95) < 0.005
    lo, hi = np.array(r["bounds_m"])
    assert np.allclose(lo, OBJECT_BOUNDS[0], atol=0.015) and np.allclose(hi, OBJECT_BOUNDS[1], atol=0.015)
    points = o3d.io.read_point_cloud(str(out.run_dir / "points.ply"))
    assert len(points.points) == r["points"] > 1000

    fractions = [e.fraction for e in events if e.kind == "progress"]
    assert len(fractions) >= len(views) and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(e.message == f"frame {len(views)}/{len(views) + 2}" for e in events)
    assert read_status(out.run_dir)["state"] == "done"

    again = execute_stage(cap, STAGE, OBJECT)
    assert again.reused and again.run_dir == out.run_dir
    other = execute_stage(cap, STAGE, {**OBJECT, "frame_step": 2, "write_points": False, "color": False})
    assert other.run_dir != out.run_dir
    assert other.result["frames_total"] == 7 and other.result["frames_used"] == 6  # 0, 2, .., 10, "nopose"
    assert other.result["skipped_by_reason"] == {"no pose": 1}
    assert not (other.run_dir / "points.ply").exists() and other.result["colored"] is False


def test_cancel_stops_between_frames_and_publishes_nothing(tmp_path, views):
    cap = make_capture(tmp_path, views[:6])
    token = CancelToken()

    def sink(event):
        if event.kind == "progress" and event.message == "frame 2/6":
            token.cancel()

    with pytest.raises(Cancelled):
        execute_stage(cap, STAGE, OBJECT, sink=sink, cancel=token)
    run_dir = next(cap.runs_dir.iterdir())
    assert read_status(run_dir)["state"] == "cancelled"
    assert not (run_dir / "mesh.ply").exists()


def test_no_surface_is_a_reconstruction_error(tmp_path, views):
    cap = make_capture(tmp_path, views[:4])
    with pytest.raises(ReconstructionError, match="no surface"):
        execute_stage(cap, STAGE, {**OBJECT, "min_depth_m": 1.0, "max_depth_m": 1.5})
    run_dir = next(cap.runs_dir.iterdir())
    status = read_status(run_dir)
    assert status["state"] == "failed" and status["error_type"] == "ReconstructionError"
    assert not (run_dir / "mesh.ply").exists()


def test_unscaled_capture_is_refused(tmp_path, views):
    cap = make_capture(tmp_path, views[:2], scale="unscaled")
    with pytest.raises(InputError) as info:
        execute_stage(cap, STAGE, OBJECT)
    assert info.value.where.endswith("capture.json: scale")


def test_poses_can_come_from_a_poses_stage_run(tmp_path, views):
    # capture.json holds wrong poses; the run's are right
    cap = make_capture(tmp_path / "ws", views[:6], pose_of=lambda i, c2w: np.eye(4))
    poses_run = tmp_path / "poses-run"
    poses_run.mkdir()
    frames = [{"id": f"{i:06d}", "c2w": v.c2w.tolist()} for i, v in enumerate(views[:6]) if i != 4]
    (poses_run / "poses.json").write_text(json.dumps({"scale": "metric", "frames": frames}))
    out = execute_stage(cap, STAGE, OBJECT, inputs={"poses": poses_run})
    assert out.result["frames_used"] == 5
    assert out.result["skipped_by_reason"] == {"not registered by the poses stage": 1}
    verts = np.asarray(o3d.io.read_triangle_mesh(str(out.run_dir / "mesh.ply")).vertices)
    assert np.percentile(distance_to_object(verts), 95) < 0.005  # the run's poses were used

    (poses_run / "poses.json").write_text(json.dumps({"scale": "unscaled", "frames": frames}))
    with pytest.raises(InputError) as info:
        execute_stage(cap, STAGE, {**OBJECT, "frame_step": 2}, inputs={"poses": poses_run})
    assert info.value.where == f"{poses_run / 'poses.json'}: scale"


def test_unreadable_depth_png_names_the_file(tmp_path, views):
    cap = make_capture(tmp_path, views[:3])
    bad = cap.root / "depth" / "000001.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputError) as info:
        execute_stage(cap, STAGE, OBJECT)
    assert info.value.where == str(bad)
    eight_bit = cap.root / "depth" / "000002.png"
    cv2.imwrite(str(eight_bit), np.zeros((192, 256), np.uint8))
    bad.unlink()
    with pytest.raises(InputError) as info:
        execute_stage(cap, STAGE, OBJECT)
    assert info.value.where == str(bad)  # missing file: named too
    cv2.imwrite(str(bad), np.zeros((192, 256), np.uint16))
    with pytest.raises(InputError, match="16-bit") as info:
        execute_stage(cap, STAGE, OBJECT)
    assert info.value.where == str(eight_bit)


def test_non_rigid_pose_names_the_frame(tmp_path, views):
    def scaled_third(i, c2w):
        return c2w @ np.diag([1.5, 1.5, 1.5, 1.0]) if i == 2 else c2w

    cap = make_capture(tmp_path, views[:4], pose_of=scaled_third)
    with pytest.raises(InputError, match="c2w: not a rigid motion") as info:
        execute_stage(cap, STAGE, OBJECT)
    assert info.value.where == "frame 000002"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"frame_step": 0}, "fusion.frame_step"), ({"preset": "castle"}, "fusion.preset"),
     ({"voxel_size_m": -1.0}, "fusion.voxel_size_m"), ({"min_confidence": 5}, "fusion.min_confidence")],
)
def test_bad_stage_config_names_the_option(tmp_path, views, overrides, field):
    cap = make_capture(tmp_path, views[:1])
    with pytest.raises(ConfigError) as info:
        execute_stage(cap, STAGE, overrides)
    assert info.value.where == field
    assert not cap.runs_dir.exists() or not any(cap.runs_dir.iterdir())


def test_stage_config_defaults_to_the_room_preset():
    cfg = FusionStageConfig().fusion_config()
    assert cfg.voxel_size_m == pytest.approx(0.02) and cfg.min_confidence == 1


# -- the real Stray Scanner export (iPhone LiDAR, ARKit poses, no RGB) ---------------------------


@pytest.mark.skipif(not STRAY.is_dir(), reason="shared Stray Scanner data not present")
def test_stray_scanner_capture_fuses_at_metric_scale(tmp_path):
    from recon.ingest.api import ingest
    from recon.ingest.strayscanner import read_camera_matrix, read_odometry

    cap = ingest(STRAY, Workspace(tmp_path), target_frames=60)
    out = execute_stage(cap, STAGE, {"write_points": False})  # room preset
    r = out.result
    assert r["frames_used"] == 60 and r["frames_skipped"] == 0 and r["colored"] is False
    assert r["triangles"] > 100_000
    extent = np.array(r["extent_m"])
    assert np.all(extent > 1.0) and np.all(extent < 15.0)  # a room walk, in metres
    meta = json.loads((out.run_dir / "status.json").read_text())
    assert meta["result"]["bounds_m"] == r["bounds_m"]

    # A frame that was not fused lands on the fused surface: poses, intrinsics and depth scale agree.
    mesh = o3d.io.read_triangle_mesh(str(out.run_dir / "mesh.ply"))
    tree = cKDTree(np.asarray(mesh.vertices))
    k = read_camera_matrix(STRAY / "camera_matrix.csv") * (256 / 1920)
    rows = read_odometry(STRAY / "odometry.csv")
    fused = {int(f.id) if f.id.isdigit() else -1 for f in cap.load().frames}
    for index in (100, 308, 620):
        assert index not in fused
        depth = cv2.imread(str(STRAY / "depth" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED) * 0.001
        conf = cv2.imread(str(STRAY / "confidence" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        ii, jj = np.nonzero((conf == 2) & (depth > 0.2) & (depth < 4.0))
        z = depth[ii, jj]
        cam = np.stack([(jj - k[0, 2]) * z / k[0, 0], (ii - k[1, 2]) * z / k[1, 1], z], axis=1)  # (N, 3)
        pose = rows[index].pose
        world = cam @ pose[:3, :3].T + pose[:3, 3]
        d, _ = tree.query(world)
        # read with ARKit's camera axes instead (pose @ diag(1, -1, -1, 1)) these are 0.7-3 m and 0 %
        assert np.median(d) < 0.04 and (d < 0.05).mean() > 0.75, index


@pytest.mark.skipif(not STRAY.is_dir(), reason="shared Stray Scanner data not present")
def test_stray_scanner_through_the_real_poses_stage(tmp_path):
    from recon.ingest.api import ingest

    cap = ingest(STRAY, Workspace(tmp_path), target_frames=12)
    poses = execute_stage(cap, "recon.poses.stage:STAGE")
    assert poses.result["scale"] == "metric"
    direct = execute_stage(cap, STAGE, {"write_points": False})
    via = execute_stage(cap, STAGE, {"write_points": False}, inputs={"poses": poses.run_dir})
    assert via.run_dir != direct.run_dir and via.result["frames_used"] == 12
    # device poses pass through the poses stage unchanged, so the surfaces agree
    a = np.asarray(o3d.io.read_triangle_mesh(str(direct.run_dir / "mesh.ply")).vertices)
    b = np.asarray(o3d.io.read_triangle_mesh(str(via.run_dir / "mesh.ply")).vertices)
    d, _ = cKDTree(a).query(b)
    assert np.median(d) < 0.005
