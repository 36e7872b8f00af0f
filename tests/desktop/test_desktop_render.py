"""The software viewer's pieces without Qt: camera gestures, rasterising textured meshes and
points with depth, frusta, coverage sectors, and the face-colour atlas used for exports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from desktop.capture_info import coverage, coverage_fraction, look_at_point
from desktop.export_bridge import face_colour_atlas
from desktop.viewer.camera import OrbitCamera, framing
from desktop.viewer.render import render
from desktop.viewer.scene import Scene, ViewFrustum, ViewMesh, ViewPoints
from recon.export.samples import checker_texture, uv_sphere
from recon.export.texture_io import sample_texture
from recon.sample.scene import look_at, orbit_poses


def sphere_view() -> ViewMesh:
    mesh = uv_sphere(0.1, 24, 48, texture=checker_texture(128, 256, squares=8), per_corner_uvs=True)
    return ViewMesh(mesh.vertices, mesh.faces, None, mesh.corner_uvs(), mesh.texture)


def test_camera_projects_target_to_the_centre_and_gestures_move_it():
    cam = OrbitCamera(target=(0.0, 0.1, 0.0), distance=2.0)
    screen, depth = cam.project(np.array([[0.0, 0.1, 0.0]]), 200, 100)
    assert screen[0] == pytest.approx([100.0, 50.0])
    assert depth[0] == pytest.approx(2.0)
    assert cam.orbited(0.0, 500.0).elevation_deg == pytest.approx(89.0)  # clamped
    closer = cam.zoomed(2.0)
    assert closer.distance == pytest.approx(1.0)
    # Panning by p pixels moves the target so a point at the target's depth follows the mouse.
    moved = cam.panned(30.0, 0.0, 100)
    screen2, _ = moved.project(np.array([[0.0, 0.1, 0.0]]), 200, 100)
    assert screen2[0, 0] == pytest.approx(130.0, abs=1e-6)


def test_textured_mesh_renders_its_texture_and_hides_the_back():
    mesh = sphere_view()
    scene = Scene(meshes=[mesh])
    cam = framing(scene.all_points())
    out = render(scene, cam, 160, 120)
    assert out.rgb.shape == (120, 160, 3)
    assert 1500 < out.covered < 160 * 120
    centre = out.rgb[50:70, 70:90].reshape(-1, 3)
    assert centre.std(axis=0).max() > 20  # a checker shows, not one flat colour
    # The depth at the image centre is the near side of the sphere, not the far side.
    d = out.depth[60, 80]
    assert d == pytest.approx(cam.distance - 0.1, abs=0.02)
    turned = render(scene, cam.orbited(90.0, 0.0), 160, 120)
    assert np.abs(turned.rgb.astype(int) - out.rgb.astype(int)).mean() > 2  # orbit shows another side


def test_points_are_depth_tested_against_the_mesh():
    mesh = sphere_view()
    cam = OrbitCamera(target=(0.0, 0.1, 0.0), distance=1.0, azimuth_deg=0.0, elevation_deg=0.0)
    eye, _, _, forward = cam.basis()
    behind = np.array([[0.0, 0.1, 0.0]]) + forward * 0.3  # hidden behind the sphere
    in_front = np.array([[0.0, 0.1, 0.0]]) - forward * 0.5  # between the eye and the sphere
    red = np.array([[255, 0, 0]], np.uint8)
    hidden = render(Scene(meshes=[mesh], points=[ViewPoints(behind.astype(np.float32), red)]), cam, 80, 80)
    shown = render(Scene(meshes=[mesh], points=[ViewPoints(in_front.astype(np.float32), red)]), cam, 80, 80)
    assert tuple(hidden.rgb[40, 40]) != (255, 0, 0)
    assert tuple(shown.rgb[40, 40]) == (255, 0, 0)


def test_frusta_become_eight_segments_each_and_keep_their_flag():
    poses = orbit_poses(6, (20.0,), 0.6)
    frusta = [ViewFrustum(np.asarray(p), 64, 48, 50.0, 50.0, flagged=i == 0) for i, p in enumerate(poses)]
    out = render(Scene(frusta=frusta), framing(Scene(frusta=frusta).all_points()), 120, 90)
    assert out.lines.shape == (48, 2, 2)
    assert out.line_flags.sum() == 8


def test_coverage_counts_views_per_direction_around_the_object():
    target = np.array([0.0, 0.0, 0.0])
    poses = []
    for elevation in (15.0, 35.0):
        for az in range(0, 360, 30):
            a, e = math.radians(az + 1.0), math.radians(elevation)
            eye = 0.6 * np.array([math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)])
            poses.append(look_at(eye, target))
    c2w = np.stack(poses)
    assert look_at_point(c2w) == pytest.approx(target, abs=1e-6)
    grid = coverage(c2w)
    assert grid.sum() == 24
    # Two bands (0-20 and 20-40 degrees) full all the way round, nothing above or below.
    assert (grid[2] == 1).all() and (grid[3] == 1).all()
    assert grid[[0, 1, 4, 5]].sum() == 0
    assert coverage_fraction(grid) == pytest.approx(2 / 3)
    half = coverage(c2w[[i for i in range(24) if (i % 12) < 6]])
    assert coverage_fraction(half) == pytest.approx(1 / 3)


def test_face_colour_atlas_maps_each_face_to_its_mean_colour():
    faces = np.array([[0, 1, 2], [1, 2, 3], [0, 2, 3]], np.int32)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    uv, texture = face_colour_atlas(faces, colours)
    assert uv.shape == (3, 3, 2) and texture.dtype == np.uint8
    centroid_uv = uv.mean(axis=1)  # (3, 2) inside each face's cell
    sampled = sample_texture(texture, centroid_uv)
    expected = colours[faces].astype(np.float32).mean(axis=1)
    assert sampled == pytest.approx(expected, abs=1.0)


def test_the_method_menu_lists_the_registry_with_reasons_for_what_does_not_apply(tmp_path):
    from core.workspace import Workspace
    from desktop.services import METHODS, Services
    from recon.ingest import ingest
    from recon.sample.dataset import write_capture_folder
    from recon.sample.scene import render_orbit

    assert METHODS[0] == "auto" and {"fusion", "mvs"} <= set(METHODS)
    ws = Workspace(tmp_path / "ws")
    photos = write_capture_folder(render_orbit(3, (64, 48)), tmp_path / "photos", with_depth=False)
    cid = ingest(photos, ws, name="photos").id
    services = Services(ws)
    try:
        choices = {c.name: c for c in services.method_choices(cid)}
    finally:
        services.close()
    assert list(choices) == list(METHODS)
    assert choices["mvs"].why_not is None and choices["auto"].why_not is None
    assert "depth map" in choices["fusion"].why_not and choices["fusion"].description


def test_processing_a_phone_upload_that_was_not_read_yet_starts_with_ingest(tmp_path):
    from core.capture import CaptureFolder, Manifest, utc_now
    from core.settings import Settings, save_settings
    from core.workspace import Workspace
    from desktop.services import Services

    ws = Workspace(tmp_path / "ws")
    cid = ws.new_capture_id("phone")
    capture = CaptureFolder(ws.captures_dir / cid)
    capture.raw_dir.mkdir(parents=True)
    (capture.raw_dir / "image.jpg").write_bytes(b"not read yet")
    capture.save(Manifest(id=cid, name="phone", created=utc_now(), mode="free"))
    save_settings(ws.settings_path, Settings(default_method="mvs", default_detail="reduced"))
    services = Services(ws)
    try:
        job = services.process(cid)  # no method or detail given: the settings' defaults
        chosen = services.process(cid, "auto", "preview")
    finally:
        services.close()
    # The method expands in the worker, after ingest has read the upload.
    assert [s.stage for s in job.steps] == ["ingest", "plan"]
    assert job.steps[1].config == {"method": "mvs", "detail": "reduced", "overrides": {}}
    assert chosen.steps[1].config == {"method": "auto", "detail": "preview", "overrides": {}}
