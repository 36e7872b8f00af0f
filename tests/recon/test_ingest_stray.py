import cv2
import numpy as np
import pytest
from test_ingest_support import STRAY, Recorder, captures_listing

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import ingest

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]  # BGR, one per video frame


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _depth_points(cap, frame, flip=False):
    """World points [N, 3] of a frame's depth map, and the map itself in metres [H, W]."""
    depth = cv2.imread(str(cap.root / frame.depth), cv2.IMREAD_UNCHANGED).astype(float) * frame.depth_scale
    h, w = depth.shape
    cam = frame.camera.scaled(w, h)
    v, u = np.mgrid[0:h, 0:w]
    pts = np.stack([(u - cam.cx) / cam.fx * depth, (v - cam.cy) / cam.fy * depth, depth], -1).reshape(-1, 3)
    pose = np.asarray(frame.pose) @ (GL_TO_CV if flip else np.eye(4))
    return pts @ pose[:3, :3].T + pose[:3, 3], depth, cam


def _reprojection_errors(cap, fa, fb, flip=False):
    """|depth predicted from frame a - depth measured in frame b| in metres, where both see the point."""
    world, _, _ = _depth_points(cap, fa, flip)
    _, depth_b, cam = _depth_points(cap, fb, flip)
    pose_b = np.asarray(fb.pose) @ (GL_TO_CV if flip else np.eye(4))
    inv = np.linalg.inv(pose_b)
    pb = world @ inv[:3, :3].T + inv[:3, 3]
    z = pb[:, 2]
    front = z > 0.1
    u = np.round(pb[front, 0] / z[front] * cam.fx + cam.cx).astype(int)
    v = np.round(pb[front, 1] / z[front] * cam.fy + cam.cy).astype(int)
    inside = (u >= 0) & (u < depth_b.shape[1]) & (v >= 0) & (v < depth_b.shape[0])
    return np.abs(depth_b[v[inside], u[inside]] - z[front][inside])


def test_real_stray_export_depth_only_poses_line_up_in_world_space(ws):
    if not STRAY.is_dir():
        pytest.skip("shared data not present")
    rec = Recorder()
    cap = ingest(STRAY, ws, target_frames=32, progress=rec.progress())
    m = cap.load()
    assert m.mode == "rgbd" and m.scale == "metric" and m.source["kind"] == "strayscanner"
    assert len(m.frames) == 32 and m.frames[0].id == "000000" and m.frames[-1].id == "000941"
    f = m.frames[1]
    assert f.image is None and f.depth == "depth/000030.png" and f.confidence == "confidence/000030.png"
    assert (f.camera.width, f.camera.height) == (1920, 1440)
    assert (f.camera.fx, f.camera.cx, f.camera.cy) == (1352.0168, 962.04865, 722.88153)
    assert f.timestamp == pytest.approx(258528.330141458 + 30 / 59.9, abs=0.05)
    assert (cap.root / f.depth).read_bytes() == (STRAY / "depth" / "000030.png").read_bytes()
    assert (cap.raw_dir / "odometry.csv").is_file() and (cap.raw_dir / "depth" / "000941.png").is_file()
    assert not rec.warnings
    # Depth from one frame, moved to the world with its pose and back into a frame half a second
    # later, lands on that frame's own depth: the poses are read in the right convention.
    ours, flipped = [], []
    for a, b in ((0, 1), (10, 11), (20, 21)):
        err = _reprojection_errors(cap, m.frames[a], m.frames[b])
        assert err.size > 10_000
        ours.append(np.median(err))
        assert (err < 0.05).mean() > 0.4
        flipped.append(np.median(_reprojection_errors(cap, m.frames[a], m.frames[b], flip=True)))
    assert max(ours) < 0.06
    assert max(flipped) > 3 * max(ours)  # reading the poses as OpenGL/ARKit axes would be wrong


def _stray_export(root, n=4, video_frames=4, with_conf=(0, 1, 2)):
    (root / "depth").mkdir(parents=True)
    (root / "confidence").mkdir()
    (root / "camera_matrix.csv").write_text("500.0, 0.0, 320.0\n0.0, 500.0, 240.0\n0.0, 0.0, 1.0\n")
    lines = ["timestamp, frame, x, y, z, qx, qy, qz, qw"]
    for i in range(n):
        lines.append(f"{100 + i / 60:.6f}, {i:06d}, {0.1 * i}, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0")
        cv2.imwrite(str(root / "depth" / f"{i:06d}.png"), np.full((6, 8), 1000 + i, np.uint16))
        if i in with_conf:
            cv2.imwrite(str(root / "confidence" / f"{i:06d}.png"), np.full((6, 8), 2, np.uint8))
    (root / "odometry.csv").write_text("\n".join(lines) + "\n")
    writer = cv2.VideoWriter(str(root / "rgb.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 60.0, (64, 48))
    for i in range(video_frames):
        writer.write(np.full((48, 64, 3), COLOURS[i % 4], np.uint8))
    writer.release()
    return root


def test_stray_export_with_rgb_video_gets_the_matching_colour_frames(tmp_path, ws):
    root = _stray_export(tmp_path / "scan", with_conf=(0, 1, 2))
    m = ingest(root, ws).load()
    assert [f.image for f in m.frames] == [f"images/{i:06d}.jpg" for i in range(4)]
    cap_root = ws.captures_dir / m.id
    for i, f in enumerate(m.frames):
        mean = cv2.imread(str(cap_root / f.image)).reshape(-1, 3).mean(0)
        assert np.abs(mean - COLOURS[i]).max() < 30, (i, mean)
        np.testing.assert_allclose(np.asarray(f.pose)[:3, 3], [0.1 * i, 0, 0])
    cam = m.frames[0].camera  # K was for 640x480; the video is 64x48
    assert (cam.width, cam.height, cam.fx, cam.cx) == (64, 48, pytest.approx(50.0), pytest.approx(32.0))
    assert m.frames[3].confidence is None and m.frames[2].confidence == "confidence/000002.png"
    assert m.source["has_rgb"] is True


def test_truncated_rgb_video_is_one_error_naming_it(tmp_path, ws):
    root = _stray_export(tmp_path / "scan", video_frames=2)
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert e.value.where == str(root / "rgb.mp4")
    assert captures_listing(ws) == []


def test_missing_depth_is_skipped_with_a_warning_and_bad_odometry_fails(tmp_path, ws):
    root = _stray_export(tmp_path / "scan")
    (root / "depth" / "000001.png").unlink()
    rec = Recorder()
    m = ingest(root, ws, progress=rec.progress()).load()
    assert [f.id for f in m.frames] == ["000000", "000002", "000003"]
    assert any("000001" in w for w in rec.warnings)
    text = (root / "odometry.csv").read_text().replace(", qw", ", qz2")
    (root / "odometry.csv").write_text(text)
    listing = captures_listing(ws)
    with pytest.raises(IngestError) as e:
        ingest(root, ws)
    assert e.value.where == str(root / "odometry.csv") and "qw" in e.value.reason
    assert captures_listing(ws) == listing
