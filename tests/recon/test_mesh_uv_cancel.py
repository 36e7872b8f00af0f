"""The mesh stage's UV unwrap reports while it works and stops at once when cancelled: xatlas runs
in a child process that the stage kills, instead of a library call that ran on for minutes."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest

from core.capture import Camera, Frame, Manifest, utc_now
from core.errors import Cancelled, ReconstructionError
from core.progress import CancelToken, Progress, ProgressEvent
from core.stages import execute_stage
from core.workspace import Workspace
from recon.fusion.ply import write_mesh_ply
from recon.mesh.types import Mesh
from recon.mesh.uv import unwrap

MESH = "recon.mesh.stage:STAGE"
CHILD = re.compile(r"UV unwrap of \d+ triangles in process (\d+)")


def bumpy_ball_run(folder: Path) -> Path:
    """A 'fusion run' holding a 57k-triangle ball with 2% radial noise: xatlas needs minutes to
    unwrap it on a slow core (159 s measured while another job ran)."""
    sphere = o3d.geometry.TriangleMesh.create_sphere(0.1, 120)
    vertices = np.asarray(sphere.vertices)
    vertices = vertices * (1.0 + 0.02 * np.random.default_rng(0).standard_normal((len(vertices), 1)))
    folder.mkdir()
    write_mesh_ply(folder / "mesh.ply", vertices.astype(np.float32), np.asarray(sphere.triangles, np.int32),
                   np.zeros((len(vertices), 3), np.float32), None)
    return folder


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_during_uv_unwrap_kills_the_unwrap_and_ends_cancelled(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    cid = ws.new_capture_id("ball")
    with ws.staged_capture(cid) as cap:
        # one pose-only frame half a metre in front of the ball, looking at it (OpenCV axes)
        looking = ((1.0, 0.0, 0.0, 0.0), (0.0, -1.0, 0.0, 0.0), (0.0, 0.0, -1.0, 0.5), (0.0, 0.0, 0.0, 1.0))
        cap.depth_dir.mkdir()
        cv2.imwrite(str(cap.depth_dir / "000000.png"), np.full((192, 256), 400, np.uint16))  # mm
        frame = Frame(id="000000", camera=Camera(256, 192, 200.0, 200.0, 128.0, 96.0), pose=looking,
                      depth="depth/000000.png")
        cap.save(Manifest(id=cid, name="ball", created=utc_now(), mode="rgbd", frames=(frame,),
                          status="ingested", scale="metric"))
    capture = ws.capture(cid)
    fusion_run = bumpy_ball_run(tmp_path / "fusion-run")

    token = CancelToken()
    children: list[int] = []
    unwrap_reports: list[ProgressEvent] = []

    def sink(event: ProgressEvent) -> None:
        found = CHILD.search(event.message or "")
        if found:
            children.append(int(found.group(1)))
        if event.kind == "progress" and "unwrapping UVs" in (event.message or ""):
            unwrap_reports.append(event)
            assert children and alive(children[0])  # reported while the unwrap is running
            token.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, MESH, {"crop": "none", "detail": "medium", "texture_size": 1024},
                      inputs={"fusion": fusion_run}, sink=sink, cancel=token)
    assert len(children) == 1 and unwrap_reports
    assert not alive(children[0])  # killed and reaped, not left computing
    assert 0.3 <= unwrap_reports[0].fraction < 0.55  # inside the unwrap's share of the stage
    (run_dir,) = (capture.root / "runs").glob("mesh-*")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "cancelled"
    assert not (run_dir / "textured.npz").exists()


def test_an_unwrap_child_killed_from_outside_is_one_clear_error(tmp_path: Path) -> None:
    """As when the OOM killer takes the child: the stage fails with our error, not a hang."""
    sphere = o3d.geometry.TriangleMesh.create_sphere(0.1, 120)
    vertices = np.asarray(sphere.vertices)
    vertices = vertices * (1.0 + 0.02 * np.random.default_rng(0).standard_normal((len(vertices), 1)))
    mesh = Mesh(vertices, np.asarray(sphere.triangles))
    killed: list[int] = []

    def sink(event: ProgressEvent) -> None:
        found = CHILD.search(event.message or "")
        if found:
            killed.append(int(found.group(1)))
            os.kill(killed[0], signal.SIGKILL)

    with pytest.raises(ReconstructionError, match="UV unwrap failed .killed by signal 9"):
        unwrap(mesh, 1024, progress=Progress("mesh", sink))
    assert killed and not alive(killed[0])
