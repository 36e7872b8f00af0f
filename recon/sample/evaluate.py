"""How close estimated camera poses are to the sample's true ones (known because we rendered them).

SfM poses are in an arbitrary frame and scale, so they are first aligned to the truth with the
similarity transform (Umeyama) that best maps the estimated camera centres onto the true ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import CaptureFolder
from core.errors import InputError


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R and translation t minimising |s R src + t - dst|^2 (Umeyama 1991).

    src, dst: (N, 3), N >= 3 and not collinear -> s, R (3, 3), t (3,)
    """
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"need two (N, 3) point sets with N >= 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d  # (N, 3)
    cov = b.T @ a / len(src)  # (3, 3)
    u, sigma, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ fix @ vt
    var_s = (a**2).sum() / len(src)
    scale = float(np.trace(np.diag(sigma) @ fix) / var_s)
    return scale, rotation, mu_d - scale * rotation @ mu_s


def pose_errors(estimated: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Camera-centre and viewing-direction errors of the frames in both, after alignment.

    estimated, truth: frame id -> (4, 4) OpenCV camera-to-world. Returns frames (how many were
    compared), scale (estimated -> true units), centre_rmse_m, centre_max_m, rotation_max_deg.
    """
    ids = sorted(set(estimated) & set(truth))
    if len(ids) < 3:
        raise ValueError(f"need at least 3 frames posed in both, got {len(ids)}")
    est = np.stack([np.asarray(estimated[i], np.float64) for i in ids])  # (N, 4, 4)
    true = np.stack([np.asarray(truth[i], np.float64) for i in ids])
    scale, rot, trans = similarity_transform(est[:, :3, 3], true[:, :3, 3])
    centres = scale * est[:, :3, 3] @ rot.T + trans  # (N, 3)
    dist = np.linalg.norm(centres - true[:, :3, 3], axis=1)
    rel = np.einsum("ij,njk->nik", rot, est[:, :3, :3])  # aligned rotations, (N, 3, 3)
    cos = (np.einsum("nij,nij->n", rel, true[:, :3, :3]) - 1.0) / 2.0  # trace(R1^T R2)
    angles = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {
        "frames": len(ids),
        "scale": scale,
        "centre_rmse_m": float(math.sqrt((dist**2).mean())),
        "centre_max_m": float(dist.max()),
        "rotation_max_deg": float(angles.max()),
    }


def read_poses_json(path: Path) -> dict[str, np.ndarray]:
    """Frame id -> (4, 4) OpenCV camera-to-world from a poses run's poses.json."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {f["id"]: np.asarray(f["c2w"], np.float64) for f in data["frames"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the poses ({e})", path) from None


def capture_pose_errors(capture: CaptureFolder, poses_run_dir: Path) -> dict[str, Any]:
    """pose_errors of a poses run against the poses stored in the capture (the sample's truth)."""
    truth = {f.id: np.asarray(f.pose, np.float64) for f in capture.load().frames if f.pose is not None}
    return pose_errors(read_poses_json(Path(poses_run_dir) / "poses.json"), truth)
