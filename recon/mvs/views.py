"""Posed views for dense stereo: loading, downscaling, neighbour selection and depth ranges."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.capture import Camera
from recon.posed import look_at_point as cameras_look_at


@dataclass(frozen=True)
class View:
    """One posed photo at the resolution stereo runs at."""

    name: str
    gray: np.ndarray  # (H, W) float32 in [0, 1]
    rgb: np.ndarray  # (H, W, 3) uint8
    K: np.ndarray  # (3, 3), pixel (i, j) centred at (j, i) as in OpenCV
    c2w: np.ndarray  # (4, 4) OpenCV camera-to-world

    @property
    def w2c(self) -> np.ndarray:
        return np.linalg.inv(self.c2w)

    @property
    def center(self) -> np.ndarray:
        return self.c2w[:3, 3]

    @property
    def axis(self) -> np.ndarray:
        return self.c2w[:3, 2]


def make_view(name: str, rgb: np.ndarray, camera: Camera, c2w: np.ndarray, max_size: int) -> View:
    """Downscale ``rgb`` so its longer side is at most ``max_size`` and scale the intrinsics with it."""
    h, w = rgb.shape[:2]
    s = min(1.0, max_size / max(h, w))
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA) if s < 1.0 else rgb
    cam = camera.scaled(nw, nh) if (camera.width, camera.height) != (nw, nh) else camera
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    K = np.array(cam.matrix(), np.float64)
    K[:2, 2] -= 0.5  # capture intrinsics put pixel centres at +0.5 (COLMAP); here they are integers
    return View(name, gray, np.ascontiguousarray(small), K, np.asarray(c2w, np.float64))


def look_at_point(views: list[View]) -> np.ndarray:
    """The point closest, in least squares, to every camera's optical axis: where they look."""
    return cameras_look_at(v.c2w for v in views)


def select_neighbours(views: list[View], ref: int, k: int, min_deg: float = 4.0,
                      max_deg: float = 40.0) -> list[int]:
    """Up to ``k`` views seeing the same target from an angle between min and max degrees,
    preferring about 15 degrees of baseline (enough parallax, still similar appearance)."""
    target = look_at_point(views)
    r = views[ref].center - target
    r /= np.linalg.norm(r)
    scored = []
    for j, v in enumerate(views):
        if j == ref:
            continue
        o = v.center - target
        o /= np.linalg.norm(o)
        angle = np.degrees(np.arccos(np.clip(r @ o, -1.0, 1.0)))
        if min_deg <= angle <= max_deg:
            scored.append((abs(angle - 15.0), j))
    return [j for _, j in sorted(scored)[:k]]


def depth_range(view: View, points: np.ndarray | None, fallback: tuple[float, float]) -> tuple[float, float]:
    """Near and far depth for ``view`` from sparse points it sees (2nd/98th percentile, with margin)."""
    if points is not None and len(points):
        X = (view.w2c[:3, :3] @ points.T + view.w2c[:3, 3:4]).T  # (N, 3)
        z = X[:, 2]
        uv = (view.K @ X.T).T
        h, w = view.gray.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            u, vv = uv[:, 0] / z, uv[:, 1] / z
        ok = (z > 0) & (u >= 0) & (u < w) & (vv >= 0) & (vv < h)
        if ok.sum() >= 20:
            near, far = np.percentile(z[ok], [2, 98])
            return float(near * 0.85), float(far * 1.15)
    return fallback
