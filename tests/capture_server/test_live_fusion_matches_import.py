"""A Stray Scanner recording streamed by ``scanbridge send --live`` and fused is the same room as
the same frames imported from the folder and fused: the live path keeps poses and intrinsics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
from scipy.spatial import cKDTree
from server_test_kit import STRAY, LiveServer
from test_server_live import send_cli

from core.capture import CaptureFolder
from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest

FUSION = "recon.fusion.stage:STAGE"
EVERY = 20  # of 942 frames: 48 frames spread over the whole walk


def every_nth_frame(dst: Path, step: int) -> Path:
    """A Stray folder with every ``step``-th frame of the real recording (odometry rows to match)."""
    dst.mkdir()
    shutil.copy(STRAY / "camera_matrix.csv", dst / "camera_matrix.csv")
    header, *rows = (STRAY / "odometry.csv").read_text().splitlines()
    kept = rows[::step]
    (dst / "odometry.csv").write_text("\n".join([header, *kept]) + "\n")
    for sub in ("depth", "confidence"):
        (dst / sub).mkdir()
        for row in kept:
            name = f"{row.split(',')[1].strip()}.png"
            shutil.copy(STRAY / sub / name, dst / sub / name)
    return dst


def fused_vertices(capture: CaptureFolder) -> np.ndarray:
    out = execute_stage(capture, FUSION, {"preset": "room", "voxel_size_m": 0.04, "write_points": False})
    assert out.result["frames_used"] == out.result["frames_total"]
    mesh = o3d.io.read_triangle_mesh(str(out.run_dir / "mesh.ply"))
    return np.asarray(mesh.vertices)  # (V, 3) metres


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_live_stream_fuses_to_the_same_room_as_importing_the_folder(live_server: LiveServer,
                                                                    tmp_path: Path) -> None:
    folder = every_nth_frame(tmp_path / "stray", EVERY)
    frames = len(list((folder / "depth").iterdir()))
    code, _ = live_server.devices.new_code()
    port = live_server.url.rsplit(":", 1)[1]
    sent = send_cli(tmp_path / "client", str(folder), "--live", "--speed", "0", "--code", code,
                    "--server", f"127.0.0.1:{port}")
    assert sent.returncode == 0, sent.stderr
    capture_id = json.loads(sent.stdout.strip().splitlines()[-1])["capture_id"]
    live = live_server.workspace.capture(capture_id)

    imported = ingest(folder, Workspace(tmp_path / "import-ws"), target_frames=10_000)
    assert len(imported.load().frames) == len(live.load().frames) == frames

    live_vertices, imported_vertices = fused_vertices(live), fused_vertices(imported)
    extent = imported_vertices.max(0) - imported_vertices.min(0)
    assert extent.max() > 2.0  # a room, metres
    gap_live = cKDTree(imported_vertices).query(live_vertices)[0]
    gap_imported = cKDTree(live_vertices).query(imported_vertices)[0]
    print(f"median gaps: {np.median(gap_live):.5f} m, {np.median(gap_imported):.5f} m")
    assert np.median(gap_live) < 0.01 and np.median(gap_imported) < 0.01
