"""An orbit camera: azimuth, elevation and distance around a target point, Y up."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

MIN_ELEVATION, MAX_ELEVATION = -89.0, 89.0


@dataclass(frozen=True)
class OrbitCamera:
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 1.0
    azimuth_deg: float = 35.0
    elevation_deg: float = 25.0
    fov_deg: float = 40.0
    up_sign: float = 1.0  # -1 for scenes whose "up" is -Y (OpenCV worlds from SfM)

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """eye, right, up, forward (world, unit vectors); screen x = right, screen y = -up."""
        az, el = math.radians(self.azimuth_deg), math.radians(self.elevation_deg)
        world_up = np.array([0.0, self.up_sign, 0.0])
        direction = np.array([math.sin(az) * math.cos(el), math.sin(el) * self.up_sign,
                              math.cos(az) * math.cos(el)])
        target = np.asarray(self.target, np.float64)
        eye = target + direction * self.distance
        forward = -direction
        right = np.cross(forward, world_up)
        right /= max(np.linalg.norm(right), 1e-12)
        up = np.cross(right, forward)
        return eye, right, up, forward

    def focal_px(self, height: int) -> float:
        return 0.5 * height / math.tan(math.radians(self.fov_deg) / 2)

    def project(self, points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """points (N, 3) world -> screen (N, 2) pixels (x right, y down) and depth (N,) along view."""
        eye, right, up, forward = self.basis()
        rel = np.asarray(points, np.float64) - eye  # (N, 3)
        x, y, z = rel @ right, rel @ up, rel @ forward  # (N,) each
        f = self.focal_px(height)
        safe = np.where(z > 1e-9, z, 1e-9)
        screen = np.stack([0.5 * width + f * x / safe, 0.5 * height - f * y / safe], axis=1)
        return screen, z

    def unproject(self, x_px: float, y_px: float, depth: float, width: int, height: int) -> np.ndarray:
        """The world point (3,) seen at screen (x, y) pixels at view depth ``depth``: project's inverse."""
        eye, right, up, forward = self.basis()
        f = self.focal_px(height)
        x = (x_px - 0.5 * width) * depth / f
        y = (0.5 * height - y_px) * depth / f
        return eye + x * right + y * up + depth * forward

    # -- mouse gestures ------------------------------------------------------------------------

    def orbited(self, d_azimuth: float, d_elevation: float) -> OrbitCamera:
        el = min(MAX_ELEVATION, max(MIN_ELEVATION, self.elevation_deg + d_elevation))
        return replace(self, azimuth_deg=(self.azimuth_deg + d_azimuth) % 360.0, elevation_deg=el)

    def panned(self, dx_px: float, dy_px: float, height: int) -> OrbitCamera:
        """Move the target so the scene follows the mouse by (dx, dy) pixels."""
        _, right, up, _ = self.basis()
        metres_per_px = self.distance / self.focal_px(height)
        shift = (-dx_px * right + dy_px * up) * metres_per_px
        return replace(self, target=tuple(float(v) for v in np.asarray(self.target) + shift))

    def zoomed(self, factor: float) -> OrbitCamera:
        """factor > 1 moves closer."""
        return replace(self, distance=max(1e-4, self.distance / max(factor, 1e-6)))


def framing(points: np.ndarray, fov_deg: float = 40.0, up_sign: float = 1.0) -> OrbitCamera:
    """A camera that sees all of ``points`` (N, 3) from the front-right, above."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return OrbitCamera(fov_deg=fov_deg, up_sign=up_sign)
    lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
    centre = 0.5 * (lo + hi)
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    distance = radius / math.sin(math.radians(fov_deg) / 2) * 0.9
    return OrbitCamera(tuple(float(v) for v in centre), distance, fov_deg=fov_deg, up_sign=up_sign)
