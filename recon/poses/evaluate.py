"""Pose accuracy against a reference: similarity alignment (Umeyama) of camera centres, then
rotation and centre errors per frame. Both pose sets are OpenCV camera-to-world.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising sum |dst - (s R src + t)|^2 (Umeyama 1991).

    src, dst: (N, 3), N >= 3 -> s float, R (3, 3), t (3,)
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"need two (N, 3) arrays with N >= 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d  # (N, 3)
    cov = xd.T @ xs / len(src)  # (3, 3)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    var_s = (xs**2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var_s) if var_s > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def rotation_angle_deg(r: np.ndarray) -> float:
    """Angle of a rotation matrix (3, 3) in degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


@dataclass(frozen=True)
class PoseErrors:
    frames: tuple[str, ...]  # the frames present in both sets
    rotation_deg: np.ndarray  # (N,)
    centre: np.ndarray  # (N,) in the reference's units
    scale: float  # reference units per estimate unit

    @property
    def median_rotation_deg(self) -> float:
        return float(np.median(self.rotation_deg))

    @property
    def median_centre(self) -> float:
        return float(np.median(self.centre))


def compare_poses(estimate: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> PoseErrors:
    """Align ``estimate`` to ``reference`` by their common frames' camera centres and compare.

    estimate, reference: {frame: (4, 4) OpenCV camera-to-world}
    """
    common = tuple(k for k in estimate if k in reference)
    if len(common) < 3:
        raise ValueError(f"need at least 3 frames in both pose sets, got {len(common)}")
    est = np.stack([np.asarray(estimate[k], np.float64) for k in common])  # (N, 4, 4)
    ref = np.stack([np.asarray(reference[k], np.float64) for k in common])  # (N, 4, 4)
    scale, rot, t = umeyama(est[:, :3, 3], ref[:, :3, 3])
    centres = scale * est[:, :3, 3] @ rot.T + t  # (N, 3)
    rotations = rot[None] @ est[:, :3, :3]  # (N, 3, 3) aligned camera-to-world rotations
    rot_err = np.array([rotation_angle_deg(r_ref.T @ r) for r_ref, r in zip(ref[:, :3, :3], rotations,
                                                                          strict=True)])
    return PoseErrors(common, rot_err, np.linalg.norm(centres - ref[:, :3, 3], axis=1), scale)
