"""Pose comparison against the sample's truth: similarity alignment and error measures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InputError
from recon.sample import orbit_poses
from recon.sample.evaluate import pose_errors, read_poses_json, similarity_transform


def _rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _transformed(poses, scale, rot, trans):
    """The same cameras seen in another frame: x' = s R x + t (what SfM returns)."""
    out = {}
    for i, c2w in enumerate(poses):
        m = np.eye(4)
        m[:3, :3] = rot @ c2w[:3, :3]
        m[:3, 3] = scale * rot @ c2w[:3, 3] + trans
        out[f"f{i}"] = m
    return out


def test_similarity_is_recovered():
    pts = np.random.default_rng(0).normal(size=(20, 3))
    rot = _rotation([1, 2, 3], 0.7)
    s, r, t = similarity_transform(pts, 2.5 * pts @ rot.T + [1, -2, 3])
    assert s == pytest.approx(2.5)
    np.testing.assert_allclose(r, rot, atol=1e-12)
    np.testing.assert_allclose(t, [1, -2, 3], atol=1e-12)


def test_poses_in_another_frame_have_no_error():
    truth = {f"f{i}": p for i, p in enumerate(orbit_poses(8))}
    est = _transformed(truth.values(), 0.2, _rotation([0, 1, 1], -1.1), np.array([3.0, 0.0, 1.0]))
    err = pose_errors(est, truth)
    assert err["frames"] == 8
    assert err["scale"] == pytest.approx(5.0)
    assert err["centre_rmse_m"] < 1e-9 and err["rotation_max_deg"] < 1e-5


def test_errors_are_measured_in_true_units():
    truth = {f"f{i}": p for i, p in enumerate(orbit_poses(8))}
    moved = {k: v.copy() for k, v in truth.items()}
    moved["f3"][:3, 3] += [0.0, 0.01, 0.0]  # one camera 1 cm off
    err = pose_errors(moved, truth)
    assert 0.005 < err["centre_max_m"] < 0.011
    assert 0.001 < err["centre_rmse_m"] < 0.005
    turned = {k: v.copy() for k, v in truth.items()}
    turned["f5"][:3, :3] = _rotation([0, 0, 1], np.radians(2.0)) @ turned["f5"][:3, :3]
    err = pose_errors(turned, truth)
    assert err["centre_max_m"] < 1e-9
    assert err["rotation_max_deg"] == pytest.approx(2.0)


def test_too_few_common_frames_and_bad_files_are_errors(tmp_path):
    truth = {f"f{i}": p for i, p in enumerate(orbit_poses(4))}
    with pytest.raises(ValueError, match="at least 3"):
        pose_errors({"f0": truth["f0"], "x": truth["f1"]}, truth)
    bad = tmp_path / "poses.json"
    bad.write_text(json.dumps({"frames": [{"id": "f0"}]}))
    with pytest.raises(InputError) as e:
        read_poses_json(bad)
    assert str(bad) in str(e.value)


def test_surface_metrics_of_the_true_surface_and_of_damaged_copies():
    from recon.sample import OBJECT_BOUNDS, sample_surface
    from recon.sample.evaluate import surface_metrics

    pts, normals = sample_surface(30_000, seed=11)
    perfect = surface_metrics(pts, n_truth=20_000)
    assert perfect["fscore"] > 0.999 and perfect["chamfer_m"] < 0.002
    # 3 mm off along the normals: every point is 3 mm away; still inside a 1 cm threshold.
    off = surface_metrics(pts + 0.003 * normals, n_truth=20_000)
    assert off["accuracy_mean_m"] == pytest.approx(0.003, abs=2e-4)
    assert off["fscore"] > 0.99
    assert surface_metrics(pts + 0.003 * normals, threshold_m=0.002, n_truth=20_000)["precision"] < 0.05
    # Only the top half: precise but incomplete.
    half = surface_metrics(pts[pts[:, 1] > 0.125], n_truth=20_000)
    assert half["precision"] > 0.999 and half["recall"] < 0.75
    # The ground and far-away points are cropped, not counted against the object.
    ground = np.random.default_rng(0).uniform([-0.3, 0.0, -0.3], [0.3, 0.001, 0.3], size=(5000, 3))
    far = np.array([[1.0, 1.0, 1.0], [OBJECT_BOUNDS[1][0] + 0.1, 0.1, 0.0]])
    cropped = surface_metrics(np.concatenate([pts, ground, far]), n_truth=20_000)
    assert cropped["points_kept"] <= len(pts)
    assert cropped["fscore"] > 0.999
    assert surface_metrics(np.zeros((0, 3)))["fscore"] == 0.0
