"""How close results are to the sample's truth (known because we rendered it).

Poses: SfM poses are in an arbitrary frame and scale, so they are first aligned to the truth
with the similarity transform (Umeyama) that best maps the estimated camera centres onto the
true ones. Surfaces: Chamfer distance and F-score of reconstructed points (in the sample's
world frame, metres) against the object's exact surface.
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
from recon.sample.scene import OBJECT_BOUNDS, distance_to_object, sample_surface


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


def surface_metrics(
    points: np.ndarray,
    *,
    threshold_m: float = 0.01,
    n_truth: int = 100_000,
    ground_clearance_m: float = 0.005,
    crop_margin_m: float = 0.03,
    seed: int = 0,
) -> dict[str, Any]:
    """Chamfer distance and F-score of reconstructed ``points`` against the object's surface.

    Points outside the object's bounds (grown by ``crop_margin_m``) or within
    ``ground_clearance_m`` of the ground are left out (the ground disc is not the object); the
    true surface is cropped the same way. Accuracy is each kept point's exact distance to the
    object, completeness each of ``n_truth`` true surface samples' distance to the nearest kept
    point. Returns points_kept, accuracy_mean_m, completeness_mean_m, chamfer_m (their mean),
    precision, recall and fscore at ``threshold_m``.

    points: (N, 3) metres in the sample's world frame (+Y up, ground y = 0)
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64).reshape(-1, 3)
    lo = np.array(OBJECT_BOUNDS[0]) - crop_margin_m
    hi = np.array(OBJECT_BOUNDS[1]) + crop_margin_m
    keep = np.all((points >= lo) & (points <= hi), axis=1) & (points[:, 1] >= ground_clearance_m)
    kept = points[keep]
    truth, _ = sample_surface(n_truth, seed)
    truth = truth[truth[:, 1] >= ground_clearance_m]
    if len(kept) == 0:
        return {"points_kept": 0, "accuracy_mean_m": math.inf, "completeness_mean_m": math.inf,
                "chamfer_m": math.inf, "precision": 0.0, "recall": 0.0, "fscore": 0.0}
    accuracy = distance_to_object(kept)  # (K,)
    completeness, _ = cKDTree(kept).query(truth)  # (T,)
    precision = float((accuracy < threshold_m).mean())
    recall = float((completeness < threshold_m).mean())
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "points_kept": int(len(kept)),
        "accuracy_mean_m": float(accuracy.mean()),
        "completeness_mean_m": float(completeness.mean()),
        "chamfer_m": float((accuracy.mean() + completeness.mean()) / 2.0),
        "precision": precision,
        "recall": recall,
        "fscore": fscore,
    }
