"""Live RGB-D over the WebSocket: a real Stray Scanner recording replayed by ``send --live``, and
malformed frames, wrong captures and missing tokens refused without writing anything."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from server_test_kit import (
    CAMERA,
    REPO,
    STRAY,
    LiveServer,
    files_under,
    frame,
    new_capture,
    small_stray_folder,
    ws_connect,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

from capture_server.replay import encode_frame

# The protocol's pose is ARKit camera axes (y up, z back); the manifest's OpenCV (y down, z
# forward): docs/protocol.md's `pose · diag(1, -1, -1, 1)`, written here, not imported.
FLIP_Y_Z = np.diag([1.0, -1.0, -1.0, 1.0])


def quaternion_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    """(3, 3) rotation of a unit quaternion, from the axis-angle form (Rodrigues), not the
    product formula the code under test uses."""
    q = np.array([qx, qy, qz, qw]) / np.linalg.norm([qx, qy, qz, qw])
    angle = 2.0 * np.arctan2(np.linalg.norm(q[:3]), q[3])
    if np.linalg.norm(q[:3]) < 1e-12:
        return np.eye(3)
    axis = q[:3] / np.linalg.norm(q[:3])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def stray_opencv_pose(row: str) -> np.ndarray:
    """The (4, 4) camera-to-world a Stray odometry row means. Stray writes OpenCV camera axes
    already (shared/data/.../SOURCE.md: checked by reprojecting depth between frames)."""
    values = [float(v) for v in row.split(",")]
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = quaternion_matrix(*values[5:9]), values[2:5]
    return pose


def send_cli(client_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCANBRIDGE_CLIENT_DIR": str(client_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "capture_server", "send", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=300, check=False)


def replay_and_check(server: LiveServer, folder: Path, tmp_path: Path, speed: str) -> None:
    code, _ = server.devices.new_code()
    port = server.url.rsplit(":", 1)[1]
    result = send_cli(tmp_path / "client", str(folder), "--live", "--speed", speed, "--code", code,
                      "--server", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    depth_files = sorted((folder / "depth").iterdir())
    assert out["frames"] == len(depth_files)
    capture = server.workspace.capture(out["capture_id"])
    manifest = capture.load()
    assert manifest.mode == "rgbd" and manifest.scale == "metric"
    assert len(manifest.frames) == len(depth_files)
    rows = (folder / "odometry.csv").read_text().splitlines()[1:]
    for fr, src, row in zip(manifest.frames, depth_files, rows, strict=True):
        stored = np.asarray(Image.open(capture.path(fr.depth)))
        assert np.array_equal(stored, np.asarray(Image.open(src)))
        conf = np.asarray(Image.open(capture.path(fr.confidence)))
        assert np.array_equal(conf, np.asarray(Image.open(folder / "confidence" / src.name)))
        # Stray's poses are OpenCV already: what the server stores is the row itself
        assert np.allclose(np.asarray(fr.pose), stray_opencv_pose(row), atol=1e-9)
        # camera_matrix.csv is for ARKit's 1920x1440 colour stream (SOURCE.md), not 2 x (cx, cy)
        assert (fr.camera.width, fr.camera.height) == (1920, 1440) and fr.depth_scale == 0.001
    assert [f.timestamp for f in manifest.frames] == sorted(f.timestamp for f in manifest.frames)


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_send_live_replays_a_stray_scanner_recording(live_server: LiveServer, tmp_path: Path) -> None:
    folder = small_stray_folder(tmp_path / "stray", frames=30)
    odometry = (folder / "odometry.csv").read_text().splitlines()
    (folder / "odometry.csv").write_text("\n".join(odometry[:31]) + "\n")
    replay_and_check(live_server, folder, tmp_path, speed="1")  # 30 frames at 60 Hz: half a second


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_send_live_replays_the_whole_recording_as_fast_as_it_goes(live_server: LiveServer,
                                                                  tmp_path: Path) -> None:
    # All 942 frames, unpaced (speed 0): the recorded rate is the 30-frame test's above; at that
    # rate this recording alone would hold the suite for its 15.7 s of capture.
    replay_and_check(live_server, STRAY, tmp_path, speed="0")


@pytest.mark.parametrize("bad, where", [
    (b"\x00\x00", "frame"),
    (struct.pack(">I", 500) + b"{}", "frame"),
    (struct.pack(">I", 5) + b"nojs!", "header"),
    (frame(index=-1), "index"),
    (frame(index="7"), "index"),
    (frame(camera={**CAMERA, "fx": -1}), "camera.fx"),
    (frame(pose=[[1, 0, 0]]), "pose"),
    (frame(depth={"width": 17, "height": 12}), "frame"),
    (frame(color_bytes=3), "frame"),
    (frame()[:-1], "frame"),
    (frame(depth={"width": 5000, "height": 5000}), "depth"),
    (encode_frame({"index": 0, "timestamp": 0, "camera": CAMERA, "pose": None, "color_bytes": 4,
                   "depth": None, "confidence": False}, b"GIF8", None, None), "color_bytes"),
])
def test_malformed_frames_are_refused_and_write_nothing(live_server: LiveServer, bad: bytes,
                                                        where: str) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c, "rgbd")
    before = files_under(live_server.workspace.root)
    with ws_connect(live_server, cid, token) as ws:
        ws.send(frame(index=0))
        assert json.loads(ws.recv())["ack"] == 0
        after_good = files_under(live_server.workspace.root)
        ws.send(bad)
        reply = json.loads(ws.recv())
        assert reply["where"] == where, reply
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd.code == 4400
    assert files_under(live_server.workspace.root) == after_good != before


def test_duplicates_wrong_captures_and_missing_tokens_are_refused(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        rgbd = new_capture(c, "rgbd")
        photos = new_capture(c, "free")
    with ws_connect(live_server, rgbd, token) as ws:
        ws.send(frame(index=3))
        assert json.loads(ws.recv())["frames"] == 1
        ws.send(frame(index=3))
        assert json.loads(ws.recv())["where"] == "index 3"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd.code == 4409
    with ws_connect(live_server, photos, token) as ws:
        assert json.loads(ws.recv())["where"] == "mode"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd.code == 4409 and "rgbd" in closed.value.rcvd.reason
    revoked = live_server.token("to revoke")
    live_server.devices.revoke(next(d.id for d in live_server.devices.devices() if d.name == "to revoke"))
    for bad_token in (None, "garbage", revoked):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(live_server, rgbd, bad_token)
        assert refused.value.response.status_code == 403
    with live_server.client(token) as c:  # the stream's frame becomes the manifest's frame at finish
        assert c.post(f"/v1/captures/{rgbd}/finish").status_code in (200, 202)
    assert [f.id for f in live_server.workspace.capture(rgbd).load().frames] == ["frame_000003"]


def test_frames_whose_files_were_lost_before_their_ack_are_left_out(tmp_path: Path) -> None:
    from capture_server.live import JOURNAL, LiveRecorder, frames_from_journal, parse_frame_message
    from core.capture import CaptureFolder

    capture = CaptureFolder(tmp_path / "cap")
    capture.raw_dir.mkdir(parents=True)
    recorder = LiveRecorder(capture)
    for i in range(3):
        recorder.store(parse_frame_message(frame(index=i)))
    assert recorder.commit() == 3
    (capture.depth_dir / "frame_000001.png").write_bytes(b"")  # as after a power cut before fsync
    with open(capture.raw_dir / JOURNAL, "a") as f:
        f.write('{"index": 9, "timest')  # a torn last line
    assert [f.id for f in frames_from_journal(capture)] == ["frame_000000", "frame_000002"]
