"""Object isolation without masks: the support plane is cut away and only what the cameras look
at is kept, in any units and under a tilted gravity; a room scan is kept whole."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from mesh_synth import BOX_SIZE, box_mesh, camera, look_at, orbit_poses

from recon.mesh.isolate import find_support_plane, isolate_object
from recon.mesh.placement import cameras_up
from recon.mesh.types import Mesh
from recon.mesh.views import PosedView


def ground_grid(half: float = 0.5, cell: float = 0.01, noise: float = 0.001, seed: int = 0) -> Mesh:
    """A square of ground around the origin at y = 0, triangulated, with height noise."""
    n = round(2 * half / cell) + 1
    xs = np.linspace(-half, half, n)
    gx, gz = np.meshgrid(xs, xs)
    gy = np.random.default_rng(seed).normal(0.0, noise, gx.shape)
    v = np.stack([gx, gy, gz], -1).reshape(-1, 3)
    i = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]
    a, b, c, d = i, i + 1, i + n, i + n + 1
    f = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return Mesh(v, f)


def combine(*meshes: Mesh) -> Mesh:
    v, f, base = [], [], 0
    for m in meshes:
        v.append(m.vertices)
        f.append(m.faces + base)
        base += len(m.vertices)
    return Mesh(np.concatenate(v), np.concatenate(f))


def box_at(size, centre, subdivisions: int = 3) -> Mesh:
    b = trimesh.creation.box(extents=size)
    v, f = b.vertices, b.faces
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    return Mesh(v + np.asarray(centre), f)


def pose_views(poses) -> list[PosedView]:
    return [PosedView(f"v{i}", None, camera(), c2w) for i, c2w in enumerate(poses)]


def moved(mesh: Mesh, views: list[PosedView], rot: np.ndarray, scale: float, shift: np.ndarray):
    """The same scene in an SfM-like world: p -> scale * rot @ p + shift."""
    m = Mesh(scale * mesh.vertices @ rot.T + shift, mesh.faces)
    out = []
    for v in views:
        c2w = np.eye(4)
        c2w[:3, :3] = rot @ v.c2w[:3, :3]
        c2w[:3, 3] = scale * rot @ v.c2w[:3, 3] + shift
        out.append(PosedView(v.id, None, v.camera, c2w))
    return m, out


def test_an_object_on_the_ground_is_cut_free_in_any_units_and_tilt():
    obj = box_mesh(subdivisions=4)  # 0.20 x 0.12 x 0.16 m on y = 0, centred
    neighbour = box_at((0.1, 0.1, 0.1), (0.38, 0.05, 0.3))  # another thing on the table
    scene = combine(ground_grid(), obj, neighbour)
    views = pose_views(orbit_poses(16))
    rot = trimesh.transformations.rotation_matrix(0.7, [0.3, 0.2, 0.9])[:3, :3]
    scale, shift = 3.7, np.array([1.0, -2.0, 0.5])
    world_mesh, world_views = moved(scene, views, rot, scale, shift)

    result = isolate_object(world_mesh, world_views, cameras_up(world_views))

    back = (result.mesh.vertices - shift) @ rot / scale  # into the metric, Y-up frame of the truth
    lo, hi = back.min(0), back.max(0)
    half = BOX_SIZE / 2
    assert result.plane is not None
    # nothing of the ground or of the neighbour: everything lies on the box (within 1 cm) ...
    assert np.all(lo >= [-half[0] - 0.01, 0.0, -half[2] - 0.01])
    assert np.all(hi <= [half[0] + 0.01, BOX_SIZE[1] + 0.01, half[2] + 0.01])
    # ... and the box is all there but a thin band at its foot
    assert hi[1] == pytest.approx(BOX_SIZE[1], abs=1e-6)
    assert lo[1] < 0.025
    assert hi[0] - lo[0] == pytest.approx(BOX_SIZE[0], abs=1e-6)
    assert hi[2] - lo[2] == pytest.approx(BOX_SIZE[2], abs=1e-6)
    # the plane found is the ground: y = 0 in the truth's frame
    normal_truth = rot.T @ result.plane.normal
    assert normal_truth[1] > np.cos(np.radians(1.0))
    ground_point = rot.T @ (result.plane.offset * result.plane.normal - shift) / scale
    assert abs(ground_point @ normal_truth) < 0.002


def test_a_table_without_ground_keeps_its_legs():
    """A plane with much of the surface hanging below it (a table top, a seat) is no support."""
    top = box_at((0.4, 0.03, 0.3), (0.0, 0.4, 0.0))
    legs = [box_at((0.03, 0.385, 0.03), (x, 0.1925, z), subdivisions=2)
            for x in (-0.18, 0.18) for z in (-0.13, 0.13)]
    table = combine(top, *legs)
    poses = orbit_poses(12, radius=1.2, heights=(0.5, 0.9))
    views = pose_views([_aim(p, np.array([0.0, 0.25, 0.0])) for p in poses])
    result = isolate_object(table, views, np.array([0.0, 1.0, 0.0]))
    low = result.mesh.vertices[:, 1]
    assert low.min() < 0.01  # the legs still reach the floor
    assert result.kept_fraction > 0.95


def _aim(c2w: np.ndarray, target: np.ndarray) -> np.ndarray:
    return look_at(c2w[:3, 3], target)


def test_a_room_scan_is_kept_whole():
    """Cameras inside looking out: there is no one object to isolate."""
    room = combine(ground_grid(half=1.5, cell=0.05), box_at((3.0, 2.5, 0.05), (0.0, 1.25, 1.5)),
                   box_at((3.0, 2.5, 0.05), (0.0, 1.25, -1.5)))
    poses = [look_at(np.array([0.0, 1.4, 0.0]), np.array([np.sin(a), 1.2, np.cos(a)]))
             for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)]
    result = isolate_object(room, pose_views(poses), np.array([0.0, 1.0, 0.0]))
    assert result.mesh.n_faces == room.n_faces and result.kept_fraction == 1.0


def test_outliers_under_the_floor_do_not_make_a_support_plane():
    ground = ground_grid(half=1.0, cell=0.04)
    rng = np.random.default_rng(3)
    v = ground.vertices.copy()
    dropped = rng.choice(len(v), len(v) // 100, replace=False)
    v[dropped, 1] -= rng.uniform(0.03, 0.08, len(dropped))  # spikes 3..8 cm below the floor
    plane = find_support_plane(Mesh(v, ground.faces), np.array([0.0, 1.0, 0.0]), 1.0)
    assert plane is not None and abs(plane.offset) < 0.002 and plane.normal[1] > 0.999


def test_the_foot_of_an_object_without_ground_is_no_support_plane():
    """A scan of the object alone (ground masked out, bottom never seen): the band of walls at its
    foot fills the search tolerance evenly; it must not pass for a floor an inch below it."""
    box = box_mesh(subdivisions=5)
    open_bottom = box.faces[~np.all(box.vertices[box.faces][:, :, 1] < 1e-9, axis=1)]
    plane = find_support_plane(Mesh(box.vertices, open_bottom), np.array([0.0, 1.0, 0.0]), 0.5,
                               below=np.array([0.0, 0.06, 0.0]))
    assert plane is None
