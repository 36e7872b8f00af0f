"""Mesh clean-up, crop and decimation on meshes of known shape."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
import trimesh
from mesh_synth import BOX_SIZE, box_mesh, orbit_views

from core.errors import ConfigError, InputError, ReconstructionError
from recon.export.presets import DETAIL_PRESETS
from recon.mesh.clean import clean_mesh, fill_small_holes, keep_large_components, remove_degenerate
from recon.mesh.crop import Box, auto_bounds, crop_to_object, look_at_center
from recon.mesh.decimate import decimate
from recon.mesh.types import Mesh


def sphere(center, radius, subdivisions=3) -> Mesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices + np.asarray(center), s.faces)


def merge(*meshes: Mesh) -> Mesh:
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(np.concatenate([m.vertices for m in meshes]),
                np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]))


def is_watertight(mesh: Mesh) -> bool:
    return trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).is_watertight


def test_floaters_and_specks_are_removed_and_a_second_part_kept():
    body = sphere((0, 0, 0), 0.1, 4)  # 5120 faces
    handle = sphere((0.25, 0, 0), 0.06, 3)  # 1280 faces: a quarter of the body, a real part
    specks = [sphere((0.5 + 0.05 * i, 0.3, 0), 0.005, 1) for i in range(5)]  # 80 faces each
    out = keep_large_components(merge(body, handle, *specks), min_fraction=0.1)
    assert out.n_faces == body.n_faces + handle.n_faces
    assert out.vertices[:, 0].max() < 0.32  # nothing left out by the specks
    only_body = keep_large_components(merge(body, handle, *specks), min_fraction=0.5)
    assert only_body.n_faces == body.n_faces


def test_small_holes_are_filled_large_ones_kept():
    s = sphere((0, 0, 0), 0.1, 4)
    centres = s.vertices[s.faces].mean(1)
    small = np.linalg.norm(centres - [0, 0, 0.1], axis=1) < 0.012  # a few faces at the top
    big = centres[:, 2] < -0.06  # a wide cap at the bottom
    holed = Mesh(s.vertices, s.faces[~small & ~big])
    assert not is_watertight(holed)
    filled = fill_small_holes(holed, max_hole_fraction=0.25)  # small rim < 0.25 * diag < big rim
    assert filled.n_faces > holed.n_faces
    new_centres = filled.vertices[filled.faces].mean(1)
    assert np.any(np.linalg.norm(new_centres - [0, 0, 0.1], axis=1) < 0.012)  # the top is closed again
    assert not is_watertight(filled)  # the bottom stays open
    assert is_watertight(fill_small_holes(Mesh(s.vertices, s.faces[~small]), 0.25))


def test_degenerate_and_duplicate_faces_are_removed():
    m = sphere((0, 0, 0), 0.1, 2)
    f = np.concatenate([m.faces, m.faces[:10], [[0, 0, 1], [2, 3, 3]]])
    v = np.concatenate([m.vertices, m.vertices[:1]])  # a duplicated vertex
    out = remove_degenerate(Mesh(v, f))
    assert out.n_faces == m.n_faces and len(out.vertices) == len(m.vertices)


def test_clean_mesh_on_an_empty_mesh_is_one_clear_error():
    with pytest.raises(ReconstructionError, match="mesh"):
        clean_mesh(Mesh(np.zeros((3, 3)), np.zeros((0, 3), int)))
    with pytest.raises(InputError, match="mesh.faces"):
        Mesh(np.zeros((3, 3)), np.array([[0, 1, 5]]))


def test_decimation_respects_every_preset_budget():
    """One 327,680-triangle sphere taken down through each preset's budget in turn."""
    ico = trimesh.creation.icosphere(subdivisions=7, radius=0.1)
    mesh = Mesh(ico.vertices, ico.faces)
    for preset, budget in sorted(DETAIL_PRESETS.items(), key=lambda kv: -kv[1]):
        out = decimate(mesh, budget)
        assert 0.9 * budget <= out.n_faces <= budget, preset
        radii = np.linalg.norm(out.vertices, axis=1)
        assert np.abs(radii - 0.1).max() < 0.002, preset  # still the sphere
        mesh = out
    small = sphere((0, 0, 0), 0.1, 2)
    assert decimate(small, 25_000) is small
    with pytest.raises(ConfigError, match="max_faces"):
        decimate(small, 2)


def test_auto_bounds_find_the_object_the_cameras_orbit():
    box = box_mesh(2)
    views = orbit_views(box, 8)
    center = look_at_center(views)
    assert np.allclose(center, [0, BOX_SIZE[1] / 2, 0], atol=1e-6)
    bounds = auto_bounds(views)
    assert bounds is not None and bounds.contains(box.vertices).all()
    # the room around it: a floor slab 3 m wide under the object and a far wall
    floor = Mesh(*_slab(np.array([-1.5, -0.02, -1.5]), np.array([1.5, 0.0, 1.5])))
    wall = sphere((0, 0.5, -2.0), 0.3)
    cropped, used = crop_to_object(merge(box, floor, wall), views)
    assert used is bounds or np.allclose(used.lo, bounds.lo)
    assert cropped.vertices.min(0)[2] > -0.5 and np.ptp(cropped.vertices[:, 0]) < 0.8
    cleaned = clean_mesh(cropped)
    assert np.allclose(cleaned.vertices.max(0), box.vertices.max(0), atol=1e-6)
    user = crop_to_object(merge(box, wall), views, Box.from_list([-2, 0, -3, 2, 1, -1]))[0]
    assert np.allclose(user.vertices.mean(0), [0, 0.5, -2.0], atol=0.05)  # only the wall


def test_parallel_cameras_give_no_auto_bounds():
    views = orbit_views(box_mesh(1), 3)
    forward = [type(v)(v.id, v.image, v.camera, _translated(views[0].c2w, [0.1 * i, 0, 0]))
               for i, v in enumerate(views)]
    assert look_at_center(forward) is None and auto_bounds(forward) is None


def test_bad_user_box_names_the_field():
    with pytest.raises(InputError, match="crop_box"):
        Box.from_list([0, 0, 0, 1, 1])
    with pytest.raises(InputError, match="crop_box"):
        Box.from_list([0, 0, 0, 1, -1, 1])


def _translated(c2w, t):
    out = c2w.copy()
    out[:3, 3] += t
    return out


def _slab(lo, hi):
    b = o3d.geometry.TriangleMesh.create_box(*(hi - lo))
    b.translate(lo)
    b = b.subdivide_midpoint(3)
    return np.asarray(b.vertices), np.asarray(b.triangles)


def test_mask_hull_keeps_what_most_views_put_on_the_mask():
    from core.capture import Camera
    from recon.mesh.crop import mask_hull_keep
    from recon.mesh.views import PosedView

    cam = Camera(200, 200, 200.0, 200.0, 100.0, 100.0)
    mask = np.zeros((200, 200), bool)
    mask[50:150, 50:150] = True  # the object covers x, y in [-0.25, 0.25) at z = 1
    wide = mask.copy()
    wide[50:150, 150:160] = True  # a view whose mask reaches further right
    views = [PosedView(f"v{i}", None, cam, np.eye(4), wide if i == 0 else mask) for i in range(4)]
    # On every mask; just right of the edge (on one mask of four); well off; behind every camera.
    points = np.array([[0.0, 0.0, 1.0], [0.27, 0.0, 1.0], [0.40, 0.0, 1.0], [0.0, 0.0, -1.0]])
    assert mask_hull_keep(views, points).tolist() == [True, False, False, True]
    assert mask_hull_keep(views, points, min_agree=0.25).tolist() == [True, True, False, True]
    assert mask_hull_keep(views, points, tolerance=0.06).tolist() == [True, True, False, True]
