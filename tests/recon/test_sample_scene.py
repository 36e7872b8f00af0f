"""The synthetic scene's renderer agrees with its own ground-truth geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon.sample import (
    OBJECT_BOUNDS,
    OBJECT_HEIGHT_M,
    ORBIT_TARGET,
    distance_to_object,
    orbit_poses,
    project_points,
    render_orbit,
    sample_surface,
)
from recon.sample.scene import BALL_CENTER, BALL_RADIUS, BOX_MAX, BOX_MIN

SIZE = (320, 240)


@pytest.fixture(scope="module")
def views():
    return render_orbit(6, SIZE, elevations_deg=(15.0, 35.0, 55.0), seed=0)


def _unproject(view, rows, cols):
    cam = view.camera
    z = view.depth_m[rows, cols].astype(np.float64)
    pc = np.stack([(cols + 0.5 - cam.cx) / cam.fx * z, (rows + 0.5 - cam.cy) / cam.fy * z, z], axis=1)
    return pc @ view.c2w[:3, :3].T + view.c2w[:3, 3]


def test_object_is_the_documented_size():
    lo, hi = np.array(OBJECT_BOUNDS[0]), np.array(OBJECT_BOUNDS[1])
    assert OBJECT_HEIGHT_M == pytest.approx(hi[1] - lo[1])
    assert 0.2 <= OBJECT_HEIGHT_M <= 0.3
    assert lo[1] == 0.0  # stands on the ground
    pts, _ = sample_surface(20_000, seed=3)
    assert np.all(pts >= lo - 1e-9) and np.all(pts <= hi + 1e-9)
    # The sampled surface reaches the bounds on every side (they are tight).
    np.testing.assert_allclose(pts.max(axis=0), hi, atol=3e-3)
    np.testing.assert_allclose(pts.min(axis=0)[[0, 2]], lo[[0, 2]], atol=3e-3)


def test_surface_samples_lie_on_the_visible_surface_uniformly():
    pts, normals = sample_surface(40_000, seed=1)
    assert pts.shape == normals.shape == (40_000, 3)
    assert np.all(distance_to_object(pts) < 1e-9)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    # No point is hidden inside the other solid or on the box's bottom.
    on_ball = np.abs(np.linalg.norm(pts - BALL_CENTER, axis=1) - BALL_RADIUS) < 1e-12
    assert not np.any(on_ball & np.all((pts > BOX_MIN) & (pts < BOX_MAX), axis=1))
    assert not np.any(~on_ball & (np.linalg.norm(pts - BALL_CENTER, axis=1) < BALL_RADIUS))
    assert not np.any(np.abs(pts[:, 1]) < 1e-12)
    # Normals point outwards: a step along them leaves the solid the point lies on.
    out = pts + 1e-4 * normals
    assert not np.any(~on_ball & np.all((out > BOX_MIN) & (out < BOX_MAX), axis=1))
    assert np.all(np.linalg.norm(out[on_ball] - BALL_CENTER, axis=1) > BALL_RADIUS)
    # Uniform by area: the visible ball is a cap above the box's top face.
    cap_height = BALL_RADIUS + BALL_CENTER[1] - BOX_MAX[1]
    ball_area = 2 * math.pi * BALL_RADIUS * cap_height
    size = BOX_MAX - BOX_MIN
    cut_radius_sq = BALL_RADIUS**2 - (BOX_MAX[1] - BALL_CENTER[1]) ** 2
    box_area = 2 * size[1] * (size[0] + size[2]) + size[0] * size[2] - math.pi * cut_radius_sq
    assert on_ball.mean() == pytest.approx(ball_area / (ball_area + box_area), abs=0.01)


def test_surface_samples_are_reproducible():
    a, _ = sample_surface(500, seed=7)
    b, _ = sample_surface(500, seed=7)
    c, _ = sample_surface(500, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_poses_orbit_and_look_at_the_object():
    poses = orbit_poses(24, (15.0, 35.0), radius_m=0.6)
    assert len(poses) == 24
    heights = []
    for c2w in poses:
        r = c2w[:3, :3]
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        eye = c2w[:3, 3]
        assert np.linalg.norm(eye - ORBIT_TARGET) == pytest.approx(0.6)
        to_target = (ORBIT_TARGET - eye) / np.linalg.norm(ORBIT_TARGET - eye)
        assert r[:, 2] @ to_target == pytest.approx(1.0)  # OpenCV: z looks forward
        assert r[:, 1] @ np.array([0.0, 1.0, 0.0]) < 0  # y points down the image
        assert abs(r[:, 0][1]) < 1e-12  # no roll: x stays level
        heights.append(math.degrees(math.asin((eye[1] - ORBIT_TARGET[1]) / 0.6)))
    assert sorted(set(np.round(heights, 6))) == [15.0, 35.0]
    assert heights[:12] == pytest.approx([15.0] * 12)


def test_every_view_sees_the_object_in_the_middle(views):
    for view in views:
        h, w = view.mask.shape
        assert (w, h) == SIZE
        assert view.rgb.shape == (h, w, 3) and view.rgb.dtype == np.uint8
        assert view.depth_m.dtype == np.float32
        assert 0.03 < view.mask.mean() < 0.5
        rows, cols = np.nonzero(view.mask)
        assert abs(cols.mean() - w / 2) < 0.1 * w and abs(rows.mean() - h / 2) < 0.15 * h
        uv, z = project_points(ORBIT_TARGET[None], view.camera, view.c2w)
        np.testing.assert_allclose(uv[0], [view.camera.cx, view.camera.cy], atol=1e-9)
        # Depth exists on the object and ground, not in the sky at the top of the image.
        assert np.all(view.depth_m[view.mask] > 0)
        assert np.all(view.depth_m[0] == 0)
        assert view.rgb[view.mask].std() > 30  # textured, not flat


def test_depth_unprojects_onto_the_true_surface(views):
    for view in views:
        rows, cols = np.nonzero(view.mask)
        pts = _unproject(view, rows, cols)
        assert np.all(distance_to_object(pts) < 1e-4)  # float32 depth; far below a millimetre
        ground_rows, ground_cols = np.nonzero(~view.mask & (view.depth_m > 0))
        ground = _unproject(view, ground_rows, ground_cols)
        assert np.all(np.abs(ground[:, 1]) < 1e-4)


def _box_edge_distance(pts):
    """Distance from points on the box's faces to the nearest edge of their face (inf on the ball)."""
    on_ball = np.abs(np.linalg.norm(pts - BALL_CENTER, axis=1) - BALL_RADIUS) < 1e-12
    to_limits = np.minimum(pts - BOX_MIN, BOX_MAX - pts)  # (N, 3); 0 along the face's own axis
    in_face = np.where(to_limits < 1e-12, np.inf, to_limits)
    return np.where(on_ball, np.inf, in_face.min(axis=1))


def test_surface_points_project_to_matching_depth(views):
    pts, normals = sample_surface(30_000, seed=2)
    agreed = np.zeros(2)
    for view in views:
        cam = view.camera
        eye = view.c2w[:3, 3]
        uv, z = project_points(pts, cam, view.c2w)
        to_eye = eye - pts
        cos = np.einsum("ij,ij->i", normals, to_eye) / np.linalg.norm(to_eye, axis=1)
        cols, rows = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
        inside = (cols >= 1) & (cols < cam.width - 1) & (rows >= 1) & (rows < cam.height - 1) & (cos > 0.5)
        # Away from the box's convex edges, where a pixel's centre may land on the next face.
        inside &= _box_edge_distance(pts) > 2.0 * z / cam.fx
        cols, rows, z, cos = cols[inside], rows[inside], z[inside], cos[inside]
        # Keep points whose 3x3 pixel neighbourhood is all object (away from silhouettes).
        m = view.mask
        interior = np.ones(len(cols), bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                interior &= m[rows + dr, cols + dc]
        cols, rows, z, cos = cols[interior], rows[interior], z[interior], cos[interior]
        footprint = z / cam.fx  # metres per pixel
        tan = np.sqrt(1.0 - cos**2) / cos
        tol = 1e-3 + 0.75 * footprint * tan
        depth = view.depth_m[rows, cols]
        agree = np.abs(depth - z) < tol
        # The rest are hidden behind nearer surface (from 55 degrees up the ball hides a quarter
        # of the box's top)...
        assert agree.mean() > 0.6
        assert np.all(depth[~agree] < z[~agree])  # ...never a hole that shows what is behind
        assert len(z) > 500
        agreed += [agree.sum(), len(agree)]
    assert agreed[0] / agreed[1] > 0.8


def test_static_scene_looks_the_same_from_two_views(views):
    pts, normals = sample_surface(20_000, seed=4)
    a, b = views[0], views[2]  # 60 degrees apart in azimuth
    seen = []
    for view in (a, b):
        uv, z = project_points(pts, view.camera, view.c2w)
        cols, rows = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
        ok = (cols >= 0) & (cols < view.camera.width) & (rows >= 0) & (rows < view.camera.height)
        cols, rows = np.clip(cols, 0, view.camera.width - 1), np.clip(rows, 0, view.camera.height - 1)
        ok &= np.abs(view.depth_m[rows, cols] - z) < 1e-3
        seen.append((ok, rows, cols))
    both = seen[0][0] & seen[1][0]
    assert both.sum() > 200
    ca = a.rgb[seen[0][1][both], seen[0][2][both]].astype(int)
    cb = b.rgb[seen[1][1][both], seen[1][2][both]].astype(int)
    # Same surface point, same colour (up to the texture varying inside one pixel).
    assert np.median(np.abs(ca - cb)) < 12


def test_rendering_is_deterministic_and_seeded():
    a = render_orbit(1, (64, 48), seed=0)[0]
    b = render_orbit(1, (64, 48), seed=0)[0]
    c = render_orbit(1, (64, 48), seed=1)[0]
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth_m, c.depth_m)  # the seed changes texture only
    assert not np.array_equal(a.rgb, c.rgb)


@pytest.mark.parametrize("bad", [
    dict(n_views=0), dict(size=(0, 10)), dict(elevations_deg=()), dict(elevations_deg=(20.0, -5.0)),
    dict(elevations_deg=(90.0,)), dict(radius_m=0.1),
])
def test_bad_render_arguments_are_refused(bad):
    args = dict(n_views=2, size=(32, 24))
    args.update(bad)
    with pytest.raises(ValueError):
        render_orbit(args.pop("n_views"), args.pop("size"), **args)


def test_baked_ground_reads_back_the_procedural_texture():
    from recon.sample.scene import GROUND_RADIUS_M, ground_texture
    from recon.sample.texture import ground_albedo

    baked = ground_texture(seed=0)
    rng = np.random.default_rng(0)
    xz = rng.uniform(-GROUND_RADIUS_M, GROUND_RADIUS_M, size=(5000, 2))
    pts = np.stack([xz[:, 0], np.zeros(5000), xz[:, 1]], axis=1)
    direct = ground_albedo(pts, 0)
    assert np.abs(baked.lookup(pts) - direct).mean() < 0.01  # colours in 0..1
    # Exact on the grid's own points.
    grid = -baked.half_extent_m + baked.texel_m * np.array([[3, 0, 7], [100, 0, 250]], float)
    grid[:, 1] = 0.0
    np.testing.assert_allclose(baked.lookup(grid), ground_albedo(grid, 0), atol=1e-5)
    assert np.abs(ground_texture(seed=1).lookup(pts) - direct).mean() > 0.05  # the seed matters
