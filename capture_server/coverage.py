"""Coverage for guided captures: which azimuth / elevation sectors around the object have views.

Poses are camera-to-world 4x4 in OpenCV camera axes (z forward) in a gravity-aligned world whose
+y is up (ARKit's world, which the live stream keeps). The object's centre is the point closest
to every camera's viewing ray (least squares), so a guided orbit needs no marked object.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from capture_server.live import JOURNAL, frames_from_journal
from core.capture import CaptureFolder

AZIMUTH_BINS = 12  # 30 degrees each
ELEVATION_EDGES_DEG = (-90.0, -15.0, 15.0, 45.0, 90.0)  # below, level, above, top
WORLD_UP = np.array([0.0, 1.0, 0.0])


def orbit_centre(c2w: np.ndarray) -> np.ndarray | None:
    """The point nearest to all viewing rays; None when the rays are (nearly) parallel.

    c2w: (N, 4, 4) camera-to-world, OpenCV axes.
    """
    origins = c2w[:, :3, 3]  # (N, 3)
    dirs = c2w[:, :3, 2]  # (N, 3) camera z axes, unit length
    eye = np.eye(3)
    projectors = eye[None] - dirs[:, :, None] * dirs[:, None, :]  # (N, 3, 3)
    a = projectors.sum(axis=0)  # (3, 3)
    b = np.einsum("nij,nj->i", projectors, origins)  # (3,)
    if np.linalg.cond(a) > 1e6:
        return None
    return np.linalg.solve(a, b)


def sector_counts(c2w: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(elevation bins, azimuth bins) counts of cameras around ``centre``."""
    offsets = c2w[:, :3, 3] - centre  # (N, 3)
    dist = np.linalg.norm(offsets, axis=1).clip(min=1e-9)  # (N,)
    elevation = np.degrees(np.arcsin(np.clip(offsets @ WORLD_UP / dist, -1, 1)))  # (N,)
    azimuth = np.degrees(np.arctan2(offsets[:, 0], offsets[:, 2])) % 360.0  # (N,)
    az_bin = np.minimum((azimuth / (360.0 / AZIMUTH_BINS)).astype(int), AZIMUTH_BINS - 1)
    el_bin = np.clip(np.searchsorted(ELEVATION_EDGES_DEG, elevation, side="right") - 1,
                     0, len(ELEVATION_EDGES_DEG) - 2)
    counts = np.zeros((len(ELEVATION_EDGES_DEG) - 1, AZIMUTH_BINS), dtype=int)
    np.add.at(counts, (el_bin, az_bin), 1)
    return counts


def capture_coverage(capture: CaptureFolder) -> dict[str, Any]:
    """Coverage from the device poses that arrived (live frames) or are in the manifest."""
    frames = frames_from_journal(capture) if (capture.raw_dir / JOURNAL).exists() else []
    if not frames:
        frames = list(capture.load().frames)
    poses = [f.pose for f in frames if f.pose is not None]
    grid = {"azimuth_bins": AZIMUTH_BINS, "elevation_edges_deg": list(ELEVATION_EDGES_DEG)}
    if len(poses) < 3:
        return {**grid, "available": False, "views": len(poses),
                "reason": "needs device poses of at least 3 views"}
    c2w = np.asarray(poses, dtype=float)  # (N, 4, 4)
    centre = orbit_centre(c2w)
    if centre is None:
        return {**grid, "available": False, "views": len(poses),
                "reason": "the views do not point at a common object"}
    counts = sector_counts(c2w, centre)
    return {
        **grid, "available": True, "views": len(poses),
        "centre": [round(float(x), 4) for x in centre],
        "counts": counts.tolist(),  # rows: elevation bands (low to high); columns: azimuth sectors
        "covered_fraction": round(float((counts > 0).mean()), 4),
        "azimuth_covered_fraction": round(float((counts.sum(axis=0) > 0).mean()), 4),
        "radius_m": round(float(np.median(np.linalg.norm(c2w[:, :3, 3] - centre, axis=1))), 4),
        "sector_deg": 360.0 / AZIMUTH_BINS,
    }
