"""Room scans stand on their floor, not on the outliers below it: a few spikes under the floor
once set the zero and lifted the floor about 5 cm above y = 0."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
from test_isolate import box_at, combine, ground_grid

from core.capture import Camera, Frame, Manifest, utc_now
from core.stages import execute_stage
from core.workspace import Workspace
from recon.fusion.ply import write_mesh_ply
from recon.mesh.stage import load_result
from recon.mesh.types import Mesh

MESH = "recon.mesh.stage:STAGE"
FLOOR_SPIKES_M = (0.03, 0.09)  # how far the outliers reach below the floor


def room_with_outliers(seed: int = 0) -> Mesh:
    """A 4 x 4 m floor at y = 0 (with 1 % of its vertices pulled 3..9 cm down, still attached)
    and two walls 2.5 m high."""
    floor = ground_grid(half=2.0, cell=0.05, noise=0.001, seed=seed)
    v = floor.vertices.copy()
    rng = np.random.default_rng(seed)
    spikes = rng.choice(len(v), len(v) // 100, replace=False)
    v[spikes, 1] -= rng.uniform(*FLOOR_SPIKES_M, len(spikes))
    walls = [box_at((4.0, 2.5, 0.1), (0.0, 1.25, 2.05), 5), box_at((0.1, 2.5, 4.0), (2.05, 1.25, 0.0), 5)]
    return combine(Mesh(v, floor.faces), *walls)


def room_poses() -> list[np.ndarray]:
    """From the middle of the room, looking out all around."""
    poses = []
    for a in np.linspace(0, 2 * np.pi, 10, endpoint=False):
        eye = np.array([0.1, 1.4, -0.2])
        z = np.array([np.sin(a), -0.3, np.cos(a)])
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 1.0, 0.0])
        x /= np.linalg.norm(x)
        c2w = np.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, np.cross(z, x), z, eye
        poses.append(c2w)
    return poses


def room_capture(ws: Workspace, poses: list[np.ndarray] | None = None):
    """A metric LiDAR capture (ARKit gravity: +y up) with pose-only frames (``poses``, else
    :func:`room_poses`)."""
    cam = Camera(64, 48, 50.0, 50.0, 32.0, 24.0)
    cid = ws.new_capture_id("room")
    with ws.staged_capture(cid) as cap:
        cap.depth_dir.mkdir()
        frames = []
        for i, c2w in enumerate(room_poses() if poses is None else poses):
            cv2.imwrite(str(cap.depth_dir / f"{i:06d}.png"), np.full((48, 64), 2000, np.uint16))
            frames.append(Frame(id=f"{i:06d}", camera=cam, depth=f"depth/{i:06d}.png",
                                pose=tuple(tuple(float(x) for x in row) for row in c2w)))
        cap.save(Manifest(id=cid, name="room", created=utc_now(), mode="rgbd", frames=tuple(frames),
                          status="ingested", scale="metric", source={"kind": "strayscanner"}))
    return ws.capture(cid)


def raw_mesh_run(run: Path, mesh: Mesh) -> Path:
    """A reconstruction run folder holding ``mesh`` as its mesh.ply."""
    run.mkdir()
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices),
                                  o3d.utility.Vector3iVector(mesh.faces.astype(np.int32)))
    m.compute_vertex_normals()
    write_mesh_ply(run / "mesh.ply", mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32),
                   np.asarray(m.vertex_normals, np.float32), None)
    return run


def test_room_floor_ends_at_y0_despite_outliers_below_it(tmp_path):
    room = room_with_outliers()
    run = raw_mesh_run(tmp_path / "fusion-run", room)
    cap = room_capture(Workspace(tmp_path / "ws"))

    out = execute_stage(cap, MESH, {"detail": "preview", "texture_size": 256}, inputs={"fusion": run})

    placed, placement = load_result(out.run_dir)
    v = placed.vertices
    # the floor: vertices low in the room, away from the walls (placement centres x/z on the room)
    lo, hi = v.min(0), v.max(0)
    inner = (np.abs(v[:, 0] - (lo[0] + hi[0]) / 2) < 1.5) & (np.abs(v[:, 2] - (lo[2] + hi[2]) / 2) < 1.5)
    floor = v[inner & (v[:, 1] < 0.3), 1]
    assert len(floor) > 100
    assert abs(float(np.median(floor))) < 0.005
    # the spikes are still there, below the floor: the floor was not set by them
    assert lo[1] < -FLOOR_SPIKES_M[0] / 2
    # the walls keep their true height above the floor
    assert abs(float(hi[1]) - 2.5) < 0.01
    assert placement["floor"] == "support plane" and out.result["isolation"] is None
