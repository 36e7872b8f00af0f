"""Camera paths for videos: lists of OpenCV camera-to-world poses (x right, y down, z forward)
plus pinhole intrinsics at the video's size.

Three kinds: a turntable orbit around the model at a chosen elevation, the capture's own camera
path (moved into the model's frame and smoothed), and a fly-through between keyframes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError, InputError

WORLD_UP = np.array([0.0, 1.0, 0.0])  # the model stands on y = 0, y up (recon.mesh.placement)


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, vertical_fov_deg: float) -> Intrinsics:
        f = 0.5 * height / math.tan(math.radians(vertical_fov_deg) / 2)
        return cls(f, f, width / 2, height / 2, width, height)


@dataclass(frozen=True)
class CameraPath:
    poses: np.ndarray  # (N, 4, 4) float64 camera-to-world, OpenCV axes
    intrinsics: Intrinsics

    def __len__(self) -> int:
        return len(self.poses)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """(4, 4) OpenCV camera-to-world at ``eye`` looking at ``target``, its image upright."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    norm = np.linalg.norm(forward)
    if not norm > 1e-12:
        raise ConfigError("a camera cannot look at its own position", "path")
    forward /= norm
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:  # looking straight up or down: any horizontal right will do
        right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    return c2w


def framing_distance(radius: float, intrinsics: Intrinsics, margin: float = 1.15) -> float:
    """How far from the centre a camera must stand for a sphere of ``radius`` to fill the frame."""
    half_fov = math.atan(0.5 * min(intrinsics.width / intrinsics.fx, intrinsics.height / intrinsics.fy))
    return margin * radius / math.sin(half_fov)


def turntable(centre: np.ndarray, radius: float, intrinsics: Intrinsics, frames: int, *,
              elevation_deg: float = 20.0, start_azimuth_deg: float = 0.0, turns: float = 1.0) -> CameraPath:
    """One orbit (``turns`` of them) around ``centre`` at ``elevation_deg``; the last frame stops
    one step short of the first, so the clip loops."""
    _check_frames(frames)
    if not -89.0 <= elevation_deg <= 89.0:
        raise ConfigError(f"must be between -89 and 89 degrees, got {elevation_deg}", "elevation")
    distance = framing_distance(radius, intrinsics)
    el = math.radians(elevation_deg)
    poses = []
    for i in range(frames):
        az = math.radians(start_azimuth_deg) + 2 * math.pi * turns * i / frames
        direction = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        poses.append(look_at(centre + distance * direction, centre))
    return CameraPath(np.stack(poses), intrinsics)


def fly_through(eyes: Sequence[Sequence[float]], targets: Sequence[Sequence[float]], intrinsics: Intrinsics,
                frames: int) -> CameraPath:
    """A smooth flight through keyframes (eye, target): Catmull-Rom curves through both, with
    the frames spread evenly over the keyframe intervals."""
    _check_frames(frames)
    eye_keys = _finite_points(eyes, "keyframes")
    target_keys = _finite_points(targets, "keyframes")
    if len(eye_keys) < 2 or len(eye_keys) != len(target_keys):
        raise ConfigError("a fly-through needs at least two keyframes, each an eye and a target", "keyframes")
    t = np.linspace(0.0, len(eye_keys) - 1, frames)
    eye = _catmull_rom(eye_keys, t)
    target = _catmull_rom(target_keys, t)
    return CameraPath(np.stack([look_at(e, g) for e, g in zip(eye, target, strict=True)]), intrinsics)


def default_fly_keyframes(centre: np.ndarray, radius: float,
                          intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes for a fly-through when none are given: in from high front-left, a close pass on
    the right, out low at the back. (eyes (4, 3), targets (4, 3))"""
    d = framing_distance(radius, intrinsics)
    eyes = np.array([[-0.9 * d, 0.7 * d, 0.9 * d], [0.2 * d, 0.35 * d, 0.8 * d],
                     [0.75 * d, 0.15 * d, 0.1 * d], [0.3 * d, 0.25 * d, -0.95 * d]]) + centre
    lift = np.array([0.0, 0.15 * radius, 0.0])
    targets = np.array([centre, centre + lift, centre, centre - 0.5 * lift])
    return eyes, targets


def capture_path(capture_poses: Sequence[np.ndarray], placement: np.ndarray, intrinsics: Intrinsics,
                 frames: int, *, smoothing: float = 2.0) -> CameraPath:
    """The capture's own camera path, moved into the model's frame by ``placement`` (4, 4: the
    capture's world to the model, possibly scaled), smoothed with a Gaussian of ``smoothing``
    frames and resampled to ``frames`` frames."""
    _check_frames(frames)
    if len(capture_poses) < 2:
        raise InputError("the capture has fewer than two posed frames, so it has no path to follow",
                         "capture")
    m = np.asarray(placement, float)
    scale = np.cbrt(abs(np.linalg.det(m[:3, :3]))) if m.shape == (4, 4) and np.isfinite(m).all() else 0.0
    if not scale > 1e-12:
        raise InputError("the placement matrix is not a similarity transform", "placement.json")
    rotation = m[:3, :3] / scale
    c2w = np.stack([np.asarray(p, float) for p in capture_poses])  # (K, 4, 4)
    centres = c2w[:, :3, 3] @ m[:3, :3].T + m[:3, 3]  # (K, 3)
    forwards = c2w[:, :3, 2] @ rotation.T
    downs = c2w[:, :3, 1] @ rotation.T
    centres, forwards, downs = (_gaussian_smooth(a, smoothing) for a in (centres, forwards, downs))
    t = np.linspace(0.0, len(c2w) - 1, frames)
    centres, forwards, downs = (_resample(a, t) for a in (centres, forwards, downs))
    poses = np.repeat(np.eye(4)[None], frames, axis=0)
    for i in range(frames):
        z = forwards[i] / np.linalg.norm(forwards[i])
        x = np.cross(downs[i], z)
        x /= np.linalg.norm(x)
        poses[i, :3, 0], poses[i, :3, 1], poses[i, :3, 2] = x, np.cross(z, x), z
        poses[i, :3, 3] = centres[i]
    return CameraPath(poses, intrinsics)


def _check_frames(frames: int) -> None:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ConfigError(f"a video needs at least one frame, got {frames!r}", "frames")


def _finite_points(points: Sequence[Sequence[float]], where: str) -> np.ndarray:
    try:
        a = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("expected a list of (x, y, z) points", where) from None
    if a.ndim != 2 or a.shape[1] != 3 or not np.isfinite(a).all() or np.abs(a).max(initial=0) > 1e6:
        raise ConfigError("expected finite (x, y, z) points within a million units", where)
    return a


def _catmull_rom(keys: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points (len(t), 3) on the uniform Catmull-Rom curve through ``keys`` at parameters t."""
    padded = np.concatenate([2 * keys[:1] - keys[1:2], keys, 2 * keys[-1:] - keys[-2:-1]])
    i = np.minimum(np.floor(t).astype(int), len(keys) - 2)
    u = (t - i)[:, None]
    p0, p1, p2, p3 = padded[i], padded[i + 1], padded[i + 2], padded[i + 3]
    return 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2
                  + (3 * p1 - p0 - 3 * p2 + p3) * u**3)


def _gaussian_smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return a
    half = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    padded = np.concatenate([np.repeat(a[:1], half, 0), a, np.repeat(a[-1:], half, 0)])
    out = np.stack([np.convolve(padded[:, j], k / k.sum(), mode="valid") for j in range(a.shape[1])], axis=1)
    return out


def _resample(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    x = np.arange(len(a))
    return np.stack([np.interp(t, x, a[:, j]) for j in range(a.shape[1])], axis=1)
