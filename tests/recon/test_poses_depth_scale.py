"""Captures with sensor depth but no poses (Apple Object Capture, a photo set with LiDAR depth):
after SfM the depth maps give the metric scale when they agree with the photos' geometry, and
the poses stage says so; when they disagree the model stays unscaled with one warning."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.poses.depth_scale import MAX_SPREAD, combine, view_ratios
from recon.sample import render_orbit

EXIF_IFD, FOCAL_35MM = 0x8769, 0xA405
WIDTH, HEIGHT, FOCAL_35 = 320, 240, 31  # the photo's focal length is 31/36 of its width


def _heic(path, rgb):
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[FOCAL_35MM] = FOCAL_35
    Image.fromarray(rgb).save(path, format="HEIF", quality=92, exif=exif.tobytes())


def _object_capture_folder(root, views, depth_factor=lambda i: 1.0):
    root.mkdir(parents=True)
    for i, view in enumerate(views):
        _heic(root / f"IMG_{i:04d}.HEIC", view.rgb)
        # Like the sensor: depth at a lower resolution than the photo, float metres.
        depth = view.depth_m[::2, ::2] * np.float32(depth_factor(i))
        assert cv2.imwrite(str(root / f"IMG_{i:04d}_depth.TIF"), depth)
    return root


@pytest.fixture(scope="module")
def orbit():
    hfov = 2 * math.degrees(math.atan(0.5 * WIDTH / (FOCAL_35 / 36 * WIDTH)))
    return render_orbit(12, (WIDTH, HEIGHT), elevations_deg=(25.0,), hfov_deg=hfov)


def _centre_spread(c2ws):
    centres = np.array([c[:3, 3] for c in c2ws])
    return float(np.linalg.norm(centres - centres.mean(axis=0), axis=1).mean())


def test_object_capture_scan_comes_out_metric(tmp_path, orbit):
    views = orbit
    capture = ingest(_object_capture_folder(tmp_path / "ObjectCapture", views), Workspace(tmp_path / "ws"))
    assert capture.load().source["kind"] == "object-capture"
    outcome = execute_stage(capture, "poses", {})
    poses = json.loads((outcome.run_dir / "poses.json").read_text())
    assert poses["source"] == "sfm" and poses["scale"] == "metric"
    assert poses["registered"] >= 10
    # Size of the model: the registered cameras' spread against the rendered ones (0.6 m orbit).
    by_name = {f.id: i for i, f in enumerate(capture.load().frames)}
    estimated = [np.array(f["c2w"]) for f in poses["frames"]]
    truth = [views[by_name[f["id"]]].c2w for f in poses["frames"]]
    assert _centre_spread(estimated) == pytest.approx(_centre_spread(truth), rel=0.03)
    transforms = json.loads((outcome.run_dir / "transforms.json").read_text())
    assert transforms["scale"] == "metric"


def test_depth_that_disagrees_leaves_the_scan_unscaled_with_one_warning(tmp_path, orbit):
    # Every other depth map in another unit (as if a writer mixed centimetres in): no common scale.
    source = _object_capture_folder(tmp_path / "ObjectCapture", orbit, lambda i: 1.0 if i % 2 else 1.5)
    capture = ingest(source, Workspace(tmp_path / "ws"))
    events = []
    outcome = execute_stage(capture, "poses", {}, sink=events.append)
    poses = json.loads((outcome.run_dir / "poses.json").read_text())
    assert poses["scale"] == "unscaled" and poses["depth_scale"]["agrees"] is False
    assert poses["depth_scale"]["spread"] > MAX_SPREAD
    warnings = [e.message for e in events if e.level == "warning" and "depth maps disagree" in e.message]
    assert len(warnings) == 1 and "spread" in warnings[0]


def test_view_ratios_read_the_nearest_depth_pixel():
    depth = np.zeros((2, 2))
    depth[0, 0], depth[0, 1], depth[1, 1] = 1.0, 2.0, 4.0  # depth[1, 0] = 0: no return
    # Image of 4x4 pixels on a 2x2 depth map: pixel (x=3.9, y=0.1) lies in depth column 1, row 0.
    uv = np.array([[0.5, 0.5], [3.9, 0.1], [3.0, 3.0], [0.5, 3.5], [9.0, 1.0]])
    ratios = view_ratios(depth, uv, np.array([0.5, 1.0, 2.0, 1.0, 1.0]), (4, 4))
    np.testing.assert_allclose(ratios, [2.0, 2.0, 2.0])  # no return and outside the image dropped


def test_views_that_disagree_are_not_metric():
    rng = np.random.default_rng(0)
    agreeing = [rng.normal(2.0, 0.02, 200) for _ in range(8)]
    measured = combine(agreeing)
    assert measured is not None and measured.agrees
    assert measured.metres_per_unit == pytest.approx(2.0, rel=0.005)
    # Depth maps of another unit or another shot in half the views: spread far over the limit.
    mixed = agreeing[:4] + [r * 1.5 for r in agreeing[4:]]
    measured = combine(mixed)
    assert measured is not None and not measured.agrees and measured.spread > MAX_SPREAD
    assert combine([np.ones(5)]) is None  # too few points to say anything
