"""Held-out check: a synthetic RGB-D orbit in nerfstudio's format (metric depth through
depth_file_path and depth_unit_scale_factor, no scale key) becomes a USDZ of the object alone,
metric, standing on y = 0, within 1 cm of the true surface.

The scene is built here and ray cast with open3d: a box with a ball on it standing on a ground
square; every photo sees the ground around the object, and its depth maps hold the ground too."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest
from pxr import Usd, UsdGeom
from scipy.spatial import cKDTree

from core.workspace import Workspace
from recon.ingest import ingest
from recon.pipeline import process

BOX_MIN, BOX_MAX = np.array([-0.07, 0.0, -0.05]), np.array([0.07, 0.16, 0.05])
BALL_CENTRE, BALL_RADIUS = np.array([0.0, 0.195, 0.0]), 0.055
GROUND_HALF_M = 0.5
SIZE = (256, 192)
HFOV_DEG = 60.0


def scene() -> o3d.t.geometry.RaycastingScene:
    box = o3d.geometry.TriangleMesh.create_box(*(BOX_MAX - BOX_MIN)).translate(BOX_MIN)
    ball = o3d.geometry.TriangleMesh.create_sphere(BALL_RADIUS, resolution=60).translate(BALL_CENTRE)
    g = GROUND_HALF_M
    ground = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector([[-g, 0, -g], [g, 0, -g], [g, 0, g], [-g, 0, g]]),
        o3d.utility.Vector3iVector([[0, 2, 1], [0, 3, 2]]))
    s = o3d.t.geometry.RaycastingScene()
    for m in (box, ball, ground):
        s.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(m))
    return s


def colour(p: np.ndarray) -> np.ndarray:
    """A solid texture (P, 3) 0..255: stripes on the object, a different weave on the ground."""
    on_ground = p[:, 1] < 1e-4
    obj = np.stack([128 + 100 * np.sin(p[:, 0] * 90) * np.cos(p[:, 1] * 70),
                    128 + 100 * np.sin((p[:, 1] + p[:, 2]) * 80),
                    128 + 100 * np.cos(p[:, 0] * 60 - p[:, 2] * 75)], 1)
    ground = np.stack([110 + 60 * np.sin(p[:, 0] * 150) * np.sin(p[:, 2] * 150)] * 3, 1) * [1.0, 0.9, 0.7]
    return np.where(on_ground[:, None], ground, obj)


def orbit() -> list[np.ndarray]:
    """OpenCV camera-to-world poses: two rings around the object, looking at its middle."""
    target = np.array([0.0, 0.12, 0.0])
    poses = []
    for ring, (elev, n) in enumerate(((20.0, 12), (45.0, 10))):
        for i in range(n):
            a = 2 * np.pi * (i + 0.5 * ring) / n
            e = np.radians(elev)
            eye = target + 0.5 * np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])
            z = (target - eye) / np.linalg.norm(target - eye)
            x = np.cross(z, [0.0, 1.0, 0.0])
            x /= np.linalg.norm(x)
            c2w = np.eye(4)
            c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, np.cross(z, x), z, eye
            poses.append(c2w)
    return poses


def write_nerfstudio_orbit(root: Path, with_depth: bool = True) -> None:
    """The orbit as a nerfstudio dataset in ``root``; ``with_depth``: the metric depth maps too."""
    w, h = SIZE
    f = (w / 2) / np.tan(np.radians(HFOV_DEG) / 2)
    (root / "images").mkdir(parents=True)
    if with_depth:
        (root / "depth").mkdir()
    rays_scene = scene()
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d_cam = np.stack([(xs - w / 2) / f, (ys - h / 2) / f, np.ones_like(xs)], -1)  # z = 1: t is z-depth
    frames = []
    for i, c2w in enumerate(orbit()):
        d = d_cam @ c2w[:3, :3].T
        rays = np.concatenate([np.broadcast_to(c2w[:3, 3], d.shape), d], -1).astype(np.float32)
        t = rays_scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        hit = np.isfinite(t)
        p = c2w[:3, 3] + d * np.where(hit, t, 0)[..., None]
        rgb = np.where(hit[..., None], colour(p.reshape(-1, 3)).reshape(h, w, 3), 200.0)
        cv2.imwrite(str(root / "images" / f"{i:03d}.png"),
                    cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        if with_depth:
            depth_mm = np.where(hit, np.rint(t * 1000.0), 0).astype(np.uint16)
            cv2.imwrite(str(root / "depth" / f"{i:03d}.png"), depth_mm)
        gl = c2w @ np.diag([1.0, -1.0, -1.0, 1.0])  # nerfstudio's poses are OpenGL's
        frame = {"file_path": f"images/{i:03d}.png", "transform_matrix": gl.tolist()}
        if with_depth:
            frame["depth_file_path"] = f"depth/{i:03d}.png"
        frames.append(frame)
    data = {"camera_model": "OPENCV", "fl_x": f, "fl_y": f, "cx": w / 2, "cy": h / 2, "w": w, "h": h,
            "frames": frames}
    if with_depth:
        data["depth_unit_scale_factor"] = 0.001
    (root / "transforms.json").write_text(json.dumps(data))


def true_surface(n: int, seed: int = 0) -> np.ndarray:
    """Points (n, 3) uniformly on the object's visible surface (box sides and top outside the
    ball, ball outside the box; not the box's bottom, which rests on the ground)."""
    rng = np.random.default_rng(seed)
    size = BOX_MAX - BOX_MIN
    faces = [(0, BOX_MIN[0]), (0, BOX_MAX[0]), (2, BOX_MIN[2]), (2, BOX_MAX[2]), (1, BOX_MAX[1])]
    areas = [np.prod(np.delete(size, axis)) for axis, _ in faces] + [4 * np.pi * BALL_RADIUS**2]
    counts = rng.multinomial(4 * n, np.array(areas) / np.sum(areas))
    pts = []
    for (axis, value), k in zip(faces, counts[:-1], strict=True):
        p = BOX_MIN + rng.random((k, 3)) * size
        p[:, axis] = value
        pts.append(p)
    v = rng.normal(size=(counts[-1], 3))
    pts.append(BALL_CENTRE + BALL_RADIUS * v / np.linalg.norm(v, axis=1, keepdims=True))
    p = np.concatenate(pts)
    in_ball = np.linalg.norm(p - BALL_CENTRE, axis=1) < BALL_RADIUS - 1e-9
    in_box = np.all((p > BOX_MIN + 1e-9) & (p < BOX_MAX - 1e-9), axis=1)
    p = p[~in_ball & ~in_box]
    return p[rng.permutation(len(p))[:n]]


def usdz_surface(path: Path, n: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """Points (n, 3) spread by area over the USDZ's mesh in its own (placed) frame, and the
    stage's metres per unit."""
    stage = Usd.Stage.Open(str(path))
    meshes = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == 1
    mesh = meshes[0]
    xform = np.array(mesh.ComputeLocalToWorldTransform(Usd.TimeCode.Default()))  # row-vector convention
    v = np.array(mesh.GetPointsAttr().Get(), float)
    v = v @ xform[:3, :3] + xform[3, :3]
    counts = np.array(mesh.GetFaceVertexCountsAttr().Get())
    assert np.all(counts == 3)
    tri = v[np.array(mesh.GetFaceVertexIndicesAttr().Get()).reshape(-1, 3)]  # (M, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(tri), n, p=area / area.sum())
    a, b = rng.random((2, n, 1))
    flip = (a + b) > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    t = tri[pick]
    points = t[:, 0] + a * (t[:, 1] - t[:, 0]) + b * (t[:, 2] - t[:, 0])
    return points, float(UsdGeom.GetStageMetersPerUnit(stage))


@pytest.mark.slow  # about 2.5 minutes on a shared CPU: import, depth check, fusion, mesh, USDZ
def test_nerfstudio_rgbd_orbit_becomes_the_object_alone_within_a_centimetre(tmp_path):
    write_nerfstudio_orbit(tmp_path / "orbit")
    ws = Workspace(tmp_path / "ws")
    cap = ingest(tmp_path / "orbit", ws)
    assert cap.load().scale == "metric"  # the depth and the poses agree

    result = process(ws, cap, method="auto", detail="preview", out=tmp_path / "model.usdz")

    assert result.method == "fusion"
    placed, metres_per_unit = usdz_surface(tmp_path / "model.usdz", 20_000)
    placed = placed * metres_per_unit
    # standing on y = 0: the ground the object stood on is the floor, and the object's top is
    # as high above it as the truth's (the true size, within 2 %)
    top = BALL_CENTRE[1] + BALL_RADIUS
    assert placed[:, 1].max() == pytest.approx(top, rel=0.02)
    assert 0.0 <= placed[:, 1].min() < 0.012
    # the object alone: nothing lies on the ground beside it
    ground = placed[:, 1] < 0.003
    assert ground.mean() < 0.01

    # back into the capture's world with the placement's own matrix (a rotation about y and a
    # shift, scale 1 for a metric capture), then against the true surface
    mesh_run = next(o.run_dir for o in result.outcomes if o.stage == "mesh")
    m = np.array(json.loads((mesh_run / "placement.json").read_text())["matrix"])
    assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0, abs=1e-6)
    assert m[1, 3] == pytest.approx(0.0, abs=0.003)  # the true ground (y = 0) is the floor
    world = (placed - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T
    truth = true_surface(20_000)
    to_truth = cKDTree(truth).query(world)[0]
    to_model = cKDTree(world).query(truth)[0]
    chamfer = 0.5 * (to_truth.mean() + to_model.mean())
    precision, recall = np.mean(to_truth < 0.01), np.mean(to_model < 0.01)
    f_score = 2 * precision * recall / (precision + recall)
    print(f"chamfer {chamfer * 1000:.1f} mm, precision {precision:.3f}, recall {recall:.3f}, F {f_score:.3f}")
    assert chamfer < 0.01
    assert f_score >= 0.9
    extent = np.ptp(world, axis=0)
    true_extent = np.ptp(truth, axis=0)
    assert extent[[0, 2]] == pytest.approx(true_extent[[0, 2]], rel=0.02)
