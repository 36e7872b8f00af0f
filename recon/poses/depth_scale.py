"""Metric scale for an SfM model from the frames' own sensor depth (Object Capture, a photo set
with LiDAR depth): depth maps in metres but no device poses.

Each registered view's sparse points are projected into it; the depth map at those pixels over
the point's SfM depth is that view's ratio (metres per model unit). The model is scaled by the
median over all points when the per-view medians agree (their spread, (p90 - p10) / median, is
small); otherwise the depth does not fit the geometry (a wrong unit, a depth map of another
shot) and the model stays unscaled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from core.capture import Frame

MIN_POINTS_PER_VIEW = 20
MIN_VIEWS = 2
MAX_SPREAD = 0.05  # (p90 - p10) / median of the per-view ratios
MIN_DEPTH_M = 0.05  # sensor depth nearer than this is noise or no return


@dataclass(frozen=True)
class DepthScale:
    metres_per_unit: float  # median depth-map metres per SfM unit over every point
    spread: float  # (p90 - p10) / median of the per-view medians
    views: int  # views with enough points
    points: int  # point observations used

    @property
    def agrees(self) -> bool:
        return self.views >= MIN_VIEWS and self.spread <= MAX_SPREAD

    def to_json(self) -> dict[str, float | int | bool]:
        return {"metres_per_unit": round(self.metres_per_unit, 6), "spread": round(self.spread, 4),
                "views": self.views, "points": self.points, "agrees": self.agrees}


def view_ratios(depth_m: np.ndarray, uv: np.ndarray, z_model: np.ndarray,
                image_size: tuple[int, int]) -> np.ndarray:
    """Ratios depth-map metres / model depth at the observed pixels.

    depth_m: (h, w) metres, 0 = none; uv: (N, 2) COLMAP pixel coordinates in an image of
    ``image_size`` = (width, height); z_model: (N,) the points' depth in the view, model units.
    Nearest depth pixel only: depth is never blended across an edge.
    """
    h, w = depth_m.shape
    col = np.floor(uv[:, 0] * (w / image_size[0])).astype(np.int64)
    row = np.floor(uv[:, 1] * (h / image_size[1])).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (z_model > 0) & np.isfinite(z_model)
    z = np.zeros(len(uv))
    z[inside] = depth_m[row[inside], col[inside]]
    keep = inside & (z > MIN_DEPTH_M) & np.isfinite(z)
    return z[keep] / z_model[keep]


def combine(per_view: Sequence[np.ndarray]) -> DepthScale | None:
    """One DepthScale from the per-view ratio arrays; None when fewer than two views have
    ``MIN_POINTS_PER_VIEW`` ratios."""
    used = [r for r in per_view if len(r) >= MIN_POINTS_PER_VIEW]
    if not used:
        return None
    medians = np.array([np.median(r) for r in used])
    overall = float(np.median(np.concatenate(used)))
    p10, p90 = np.percentile(medians, [10, 90])
    spread = float((p90 - p10) / overall) if overall > 0 else float("inf")
    return DepthScale(overall, spread, len(used), int(sum(len(r) for r in used)))


def _read_depth_m(path: Path, depth_scale: float) -> np.ndarray | None:
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None or depth.ndim != 2:
        return None
    return depth.astype(np.float64) * depth_scale


def measure(model: pycolmap.Reconstruction, frames: Sequence[Frame], capture_root: Path) -> DepthScale | None:
    """The scale the frames' depth maps give ``model``; None when no registered frame has depth."""
    per_view = []
    for fr in frames:
        if fr.depth is None or fr.image is None:
            continue
        image = model.find_image_with_name(fr.image)
        if image is None or not image.has_pose:
            continue
        observed = [p for p in image.points2D if p.has_point3D()]
        if len(observed) < MIN_POINTS_PER_VIEW:
            continue
        depth = _read_depth_m(capture_root / fr.depth, fr.depth_scale)
        if depth is None:
            continue
        uv = np.array([p.xy for p in observed], np.float64)  # (N, 2)
        xyz = np.array([model.points3D[p.point3D_id].xyz for p in observed], np.float64)  # (N, 3)
        cam_from_world = image.cam_from_world().matrix()  # (3, 4)
        z_model = xyz @ cam_from_world[2, :3] + cam_from_world[2, 3]
        camera = model.camera(image.camera_id)
        per_view.append(view_ratios(depth, uv, z_model, (int(camera.width), int(camera.height))))
    return combine(per_view)


def scale_model(model: pycolmap.Reconstruction, metres_per_unit: float) -> None:
    """Scale ``model`` in place about the origin (poses and points) into metres."""
    model.transform(pycolmap.Sim3d(metres_per_unit, pycolmap.Rotation3d(), np.zeros(3)))
