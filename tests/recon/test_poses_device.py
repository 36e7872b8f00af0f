"""The poses stage with device poses: kept exactly (metric), sparse points triangulated from them,
or back-projected from depth when the frames have no images."""

import json
from pathlib import Path

import numpy as np
import pycolmap
import pytest

from core.workspace import Workspace
from recon.ingest import ingest
from recon.sample import bundled_sample_dir, distance_to_object

STRAY = Path("/work/shared/data/strayscanner-iphone-lidar-depthonly")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    from core.stages import execute_stage

    ws = Workspace(tmp_path_factory.mktemp("device") / "ws")
    capture = ingest(bundled_sample_dir(), ws, name="sample")
    outcome = execute_stage(capture, "poses", {"matcher": "sequential", "sequential_overlap": 3})
    return capture, outcome


def test_device_poses_are_kept_exactly(sample_run):
    capture, outcome = sample_run
    manifest = capture.load()
    assert all(fr.pose is not None for fr in manifest.frames)
    r = outcome.result
    assert r["source"] == "device" and r["scale"] == manifest.scale
    assert r["registered"] == r["total"] == len(manifest.frames) and r["unregistered"] == {}
    poses = json.loads((outcome.run_dir / "poses.json").read_text())
    by_id = {f["id"]: np.array(f["c2w"]) for f in poses["frames"]}
    model = pycolmap.Reconstruction(outcome.run_dir / "sparse" / "0")
    for fr in manifest.frames:
        np.testing.assert_allclose(by_id[fr.id], np.array(fr.pose), atol=1e-9)
        image = model.find_image_with_name(fr.image)
        np.testing.assert_allclose(image.projection_center(), np.array(fr.pose)[:3, 3], atol=1e-6)


def test_triangulated_points_lie_on_the_object_in_metres(sample_run):
    _capture, outcome = sample_run
    model = pycolmap.Reconstruction(outcome.run_dir / "sparse" / "0")
    assert model.num_points3D() > 200
    assert model.compute_mean_reprojection_error() < 1.5
    xyz = np.array([p.xyz for p in model.points3D.values()])
    # The sample scene is an object on a ground plane; most points are on either, in metres.
    near = np.abs(distance_to_object(xyz)) < 0.01
    on_ground = np.abs(xyz[:, 1]) < 0.01
    assert np.mean(near | on_ground) > 0.8


def test_transforms_json_carries_depth_and_images(sample_run):
    _capture, outcome = sample_run
    transforms = json.loads((outcome.run_dir / "transforms.json").read_text())
    frame = transforms["frames"][0]
    assert (outcome.run_dir / frame["file_path"]).is_file()
    assert (outcome.run_dir / frame["depth_file_path"]).is_file()
    assert transforms["ply_file_path"] == "sparse.ply"


def test_ignoring_device_poses_runs_sfm_and_its_depth_makes_it_metric(tmp_path):
    """SfM alone is unscaled; the sample's metric depth maps agree with it and give its scale
    (recon.poses.depth_scale): the camera distances then match the device poses' in metres."""
    import itertools

    from core.stages import execute_stage

    capture = ingest(bundled_sample_dir(), Workspace(tmp_path / "ws"), name="sample")
    outcome = execute_stage(capture, "poses", {"use_device_poses": False, "max_attempts": 1,
                                               "matcher": "sequential", "sequential_overlap": 3})
    assert outcome.result["source"] == "sfm" and outcome.result["scale"] == "metric"
    assert outcome.result["depth_scale"]["agrees"] is True
    assert outcome.result["registered"] >= 0.9 * outcome.result["total"]
    sfm = {f["id"]: np.asarray(f["c2w"], float)[:3, 3]
           for f in json.loads((outcome.run_dir / "poses.json").read_text())["frames"]}
    device = {f.id: np.asarray(f.pose, float).reshape(4, 4)[:3, 3] for f in capture.load().frames}
    pairs = list(itertools.combinations(sorted(sfm), 2))
    ratio = np.median([np.linalg.norm(sfm[a] - sfm[b]) / np.linalg.norm(device[a] - device[b])
                       for a, b in pairs])
    assert ratio == pytest.approx(1.0, abs=0.03)


@pytest.mark.skipif(not STRAY.is_dir(), reason="shared Stray Scanner export not present")
def test_depth_only_capture_gets_a_cloud_from_depth(tmp_path):
    from core.stages import execute_stage

    capture = ingest(STRAY, Workspace(tmp_path / "ws"), name="stray", target_frames=6)
    manifest = capture.load()
    assert all(fr.image is None and fr.depth and fr.pose for fr in manifest.frames)
    outcome = execute_stage(capture, "poses", {})
    r = outcome.result
    assert r["source"] == "device" and r["registered"] == r["total"] == len(manifest.frames)
    assert r["points"] > 1000
    ply = (outcome.run_dir / "sparse.ply").read_bytes()
    assert f"element vertex {r['points']}".encode() in ply[:300]
    model = pycolmap.Reconstruction(outcome.run_dir / "sparse" / "0")
    assert model.num_reg_images() == len(manifest.frames)
    # Every depth point is in front of some camera within the LiDAR range (< 10 m).
    header_end = ply.index(b"end_header\n") + len(b"end_header\n")
    vertex = np.frombuffer(ply[header_end:], dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    centres = np.array([np.array(fr.pose)[:3, 3] for fr in manifest.frames])
    nearest = np.min(np.linalg.norm(vertex["xyz"][:, None, :] - centres[None], axis=2), axis=1)
    assert np.all(nearest < 10.0) and np.median(nearest) > 0.2
