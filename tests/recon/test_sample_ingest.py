"""recon.ingest reads the synthetic sample like any nerfstudio dataset, keeping its geometry."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.workspace import Workspace
from recon.ingest import ingest
from recon.sample import bundled_sample_dir, distance_to_object, render_orbit, write_capture_folder
from recon.sample.build import DEFAULT_ELEVATIONS, DEFAULT_SIZE, DEFAULT_VIEWS
from recon.sample.scene import make_camera, orbit_poses


def test_bundled_sample_ingests_with_its_poses_depth_and_masks(tmp_path):
    ws = Workspace(tmp_path / "ws")
    capture = ingest(bundled_sample_dir(), ws, name="sample")
    manifest = capture.load()
    assert len(manifest.frames) == DEFAULT_VIEWS
    assert manifest.source["kind"] == "transforms"
    camera = make_camera(DEFAULT_SIZE)
    for frame, c2w in zip(manifest.frames, orbit_poses(DEFAULT_VIEWS, DEFAULT_ELEVATIONS), strict=True):
        assert (frame.camera.width, frame.camera.height) == DEFAULT_SIZE
        assert frame.camera.fx == camera.fx and frame.camera.cx == camera.cx
        np.testing.assert_allclose(np.array(frame.pose), c2w, atol=1e-9)  # OpenCV, as rendered
        assert frame.depth is not None and frame.mask is not None
        assert capture.path(frame.image).is_file()
    # The stored depth of one frame, unprojected with the manifest's camera and pose, lands on the
    # object where the mask says object.
    frame = manifest.frames[5]
    depth = np.asarray(Image.open(capture.path(frame.depth))).astype(np.float64) * frame.depth_scale
    mask = np.asarray(Image.open(capture.path(frame.mask))) > 0
    rows, cols = np.nonzero(mask & (depth > 0))
    cam = frame.camera
    z = depth[rows, cols]
    pc = np.stack([(cols + 0.5 - cam.cx) / cam.fx * z, (rows + 0.5 - cam.cy) / cam.fy * z, z], axis=1)
    pose = np.array(frame.pose)
    world = pc @ pose[:3, :3].T + pose[:3, 3]
    assert len(world) > 1000
    assert np.percentile(distance_to_object(world), 99) < 2e-3  # mm-quantised depth


def test_a_freshly_rendered_orbit_ingests(tmp_path):
    views = render_orbit(4, (80, 60), elevations_deg=(30.0,))
    folder = write_capture_folder(views, tmp_path / "orbit", with_depth=False, image_format="png")
    capture = ingest(folder, Workspace(tmp_path / "ws"))
    frames = capture.load().frames
    assert len(frames) == 4
    assert all(f.depth is None and f.mask is not None for f in frames)
    np.testing.assert_array_equal(np.asarray(Image.open(capture.path(frames[2].image))), views[2].rgb)
