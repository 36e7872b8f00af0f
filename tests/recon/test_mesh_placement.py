"""Placement (Y-up, centred, on y = 0, metric) and ArUco scale on synthetic captures."""

from __future__ import annotations

import numpy as np
import pytest
from mesh_synth import BOX_SIZE, box_mesh, marker_plane_views, orbit_views, transform_views
from scipy.spatial.transform import Rotation

from core.errors import ConfigError
from recon.mesh.aruco import marker_scale
from recon.mesh.placement import cameras_up, place, resolve_up


@pytest.fixture(scope="module")
def canonical():
    mesh = box_mesh(1)
    return mesh, orbit_views(mesh, 8)


def moved(canonical, seed: int, scale: float = 1.0):
    """The box and its photos in a world rotated, shifted and scaled away from Y-up."""
    mesh, views = canonical
    rot = Rotation.random(random_state=seed).as_matrix()
    trans = np.random.default_rng(seed).uniform(-2, 2, 3)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = scale * rot, trans
    return mesh.transformed(m), transform_views(views, rot, trans, scale), rot


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metric_capture_is_placed_upright_centred_on_the_ground(canonical, seed):
    mesh, views, rot = moved(canonical, seed)
    up, source = resolve_up("auto", views, source_kind="images", mode="free")
    assert source == "cameras" and np.degrees(np.arccos(np.clip(np.dot(up, rot @ [0, 1, 0]), -1, 1))) < 1.0
    p = place(mesh, up, views, "metric", 1.0)
    out = mesh.transformed(p.matrix).vertices
    lo, hi = out.min(0), out.max(0)
    assert abs(lo[1]) < 1e-9  # standing on y = 0
    assert abs(lo[0] + hi[0]) < 1e-9 and abs(lo[2] + hi[2]) < 1e-9  # centred on x/z
    # the box's own height axis is y again, and its size is kept (the box may turn about y)
    assert abs(hi[1] - BOX_SIZE[1]) < 0.02 * BOX_SIZE[1]
    assert sorted(hi[[0, 2]] - lo[[0, 2]]) == pytest.approx(sorted(BOX_SIZE[[0, 2]]), rel=0.02)
    # the first camera ends up on the +z side, in front of the model
    cam = p.matrix[:3, :3] @ views[0].center + p.matrix[:3, 3]
    assert cam[2] > 0 and abs(cam[0]) < 1e-6
    assert p.to_json()["scale"] == "metric" and p.to_json()["metric"] is True


def test_arkit_world_uses_gravity_and_axis_choices(canonical):
    mesh, views = canonical
    up, source = resolve_up("auto", views, source_kind="strayscanner", mode="rgbd")
    assert source == "arkit-gravity" and np.allclose(up, [0, 1, 0])
    assert np.allclose(resolve_up("-z", views, None, None)[0], [0, 0, -1])
    with pytest.raises(ConfigError, match="up"):
        resolve_up("sideways", views, None, None)


def test_camera_up_on_a_half_orbit_is_still_vertical(canonical):
    """Cameras on one side only: the mean camera-up leans, the orbit plane's normal does not."""
    _, views = canonical
    half = views[:4]
    assert np.degrees(np.arccos(np.clip(cameras_up(half) @ [0, 1, 0], -1, 1))) < 2.0


@pytest.mark.parametrize("world_scale", [0.37, 2.5])
def test_aruco_marker_recovers_metric_scale(world_scale):
    views = marker_plane_views(scale=world_scale, marker_size=0.10)
    found = marker_scale(views, marker_size_m=0.10)
    assert found is not None and found.marker_id == 7 and found.n_views == len(views)
    assert found.metres_per_unit == pytest.approx(1 / world_scale, rel=0.02)
    assert found.edge_spread < 0.02


def test_unscaled_when_no_marker_is_seen(canonical):
    mesh, views, _ = moved(canonical, 3, scale=3.0)
    assert marker_scale(views) is None
    one_view = marker_plane_views(scale=1.0)[:1]
    assert marker_scale(one_view) is None  # a marker needs two views to be triangulated
    p = place(mesh, cameras_up(views), views, "unscaled", None)
    out = mesh.transformed(p.matrix).vertices
    assert p.to_json()["metric"] is False and p.metres_per_unit is None
    assert np.ptp(out[:, 1]) == pytest.approx(3.0 * BOX_SIZE[1], rel=0.02)  # units kept as they were


def test_aruco_unscaled_capture_is_placed_in_metres(canonical):
    mesh, views, _ = moved(canonical, 4, scale=2.5)
    found = marker_scale(marker_plane_views(scale=2.5))
    p = place(mesh, cameras_up(views), views, "aruco", found.metres_per_unit)
    out = mesh.transformed(p.matrix).vertices
    assert np.ptp(out[:, 1]) == pytest.approx(BOX_SIZE[1], rel=0.02)


def test_bad_marker_options_name_the_field():
    views = marker_plane_views(scale=1.0)
    with pytest.raises(ConfigError, match="marker_dictionary"):
        marker_scale(views, dictionary="DICT_NOPE")
    with pytest.raises(ConfigError, match="marker_size_m"):
        marker_scale(views, marker_size_m=0)


def test_marker_whose_corners_do_not_triangulate_to_a_square_is_ignored():
    """Poses that disagree with the photos (or a false detection) must not set the scale."""
    views = marker_plane_views(scale=1.0)
    bad = views[1].c2w.copy()
    bad[:3, 3] += [0.05, 0.0, 0.0]  # 5 cm off: the corners no longer meet in one square
    broken = [views[0], type(views[1])(views[1].id, views[1].image, views[1].camera, bad), views[2]]
    assert marker_scale(views) is not None
    assert marker_scale(broken) is None
