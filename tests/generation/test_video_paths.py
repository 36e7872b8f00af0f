"""Camera paths: the geometry each promises, checked by independent computation here."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError, InputError
from generation.video.paths import Intrinsics, capture_path, fly_through, look_at, turntable

INTRINSICS = Intrinsics.from_fov(64, 48, 40.0)


def _centre_of_view(pose: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Where ``point`` lands in the image of the OpenCV camera ``pose`` (pixels)."""
    cam = np.linalg.inv(pose) @ np.append(point, 1.0)
    return np.array([INTRINSICS.fx * cam[0] / cam[2] + INTRINSICS.cx,
                     INTRINSICS.fy * cam[1] / cam[2] + INTRINSICS.cy])


def test_turntable_orbits_the_centre_at_the_elevation_and_keeps_it_in_the_middle():
    centre = np.array([0.3, 0.1, -0.2])
    path = turntable(centre, 0.25, INTRINSICS, 8, elevation_deg=30.0)
    assert path.poses.shape == (8, 4, 4)
    offsets = path.poses[:, :3, 3] - centre
    distances = np.linalg.norm(offsets, axis=1)
    assert np.ptp(distances) < 1e-9  # a circle around the centre
    assert np.allclose(np.degrees(np.arcsin(offsets[:, 1] / distances)), 30.0)
    azimuths = np.degrees(np.arctan2(offsets[:, 0], offsets[:, 2]))
    assert np.allclose(np.diff(np.unwrap(np.radians(azimuths))), np.radians(45.0))  # even steps, one turn
    for pose in path.poses:
        assert np.allclose(_centre_of_view(pose, centre), [32, 24])
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3))  # rotations
        assert np.linalg.det(pose[:3, :3]) > 0
        assert pose[1, 1] < 0  # image down points down the world: upright


def test_fly_through_passes_through_its_keyframes():
    eyes = [[1.0, 0.5, 1.0], [0.0, 0.8, 2.0], [-1.0, 0.2, 1.0]]
    targets = [[0.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.1, 0.0, 0.0]]
    path = fly_through(eyes, targets, INTRINSICS, 9)  # frames 0, 4, 8 fall on the keyframes
    for frame, eye, target in zip((0, 4, 8), eyes, targets, strict=True):
        assert np.allclose(path.poses[frame, :3, 3], eye)
        assert np.allclose(_centre_of_view(path.poses[frame], np.array(target)), [32, 24])
    steps = np.linalg.norm(np.diff(path.poses[:, :3, 3], axis=0), axis=1)
    assert steps.max() < 3 * np.median(steps)  # no jumps


@pytest.mark.parametrize("bad", [[[0, 0, 0]], [[0, 0, float("nan")], [1, 1, 1]], [[1e400, 0, 0], [0, 0, 0]],
                                 [[0, 0], [1, 1]], "abc"])
def test_fly_through_rejects_bad_keyframes(bad):
    with pytest.raises(ConfigError):
        fly_through(bad, bad, INTRINSICS, 5)


def test_capture_path_follows_the_capture_in_the_models_frame_and_smooths_the_shake():
    rng = np.random.default_rng(0)
    angles = np.linspace(0, np.pi, 120)  # a phone's path: many frames, each a small step
    clean = [look_at(np.array([np.sin(a), 0.4, np.cos(a)]) * 2.0, np.zeros(3)) for a in angles]
    shaky = [p.copy() for p in clean]
    for p in shaky:
        p[:3, 3] += rng.normal(0, 0.03, 3)
    # placement: the capture's world to the model: scale 0.5, a quarter turn about y, lifted 1 up
    rot = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    placement = np.eye(4)
    placement[:3, :3] = 0.5 * rot
    placement[:3, 3] = [0, 1, 0]
    path = capture_path(shaky, placement, INTRINSICS, 120, smoothing=3.0)
    expected = np.array([0.5 * rot @ p[:3, 3] + [0, 1, 0] for p in clean])
    noisy = np.array([0.5 * rot @ p[:3, 3] + [0, 1, 0] for p in shaky])
    err_smoothed = np.linalg.norm(path.poses[:, :3, 3] - expected, axis=1)[10:-10].mean()
    err_raw = np.linalg.norm(noisy - expected, axis=1)[10:-10].mean()
    assert err_smoothed < 0.5 * err_raw, (err_smoothed, err_raw)
    for pose, raw in zip(path.poses, clean, strict=True):
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9)  # rigid, scale removed
        assert np.degrees(np.arccos(np.clip(pose[:3, 2] @ (rot @ raw[:3, 2]), -1, 1))) < 5.0


def test_capture_path_needs_two_poses_and_a_sane_placement():
    pose = look_at(np.array([0.0, 0.0, 2.0]), np.zeros(3))
    with pytest.raises(InputError):
        capture_path([pose], np.eye(4), INTRINSICS, 5)
    with pytest.raises(InputError):
        capture_path([pose, pose], np.full((4, 4), np.nan), INTRINSICS, 5)
