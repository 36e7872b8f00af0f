"""Metric scale from a printed ArUco marker seen in posed photos (photo-only captures)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import ConfigError
from recon.mesh.views import PosedView


@dataclass(frozen=True)
class MarkerScale:
    """metres per world unit, from marker ``marker_id`` seen in ``n_views`` photos."""

    metres_per_unit: float
    marker_id: int
    n_views: int
    edge_units: float  # the marker's measured edge length in world units
    edge_spread: float  # (max - min) / mean of its four measured edges


def aruco_dictionary(name: str) -> cv2.aruco.Dictionary:
    value = getattr(cv2.aruco, name, None)
    if not name.startswith("DICT_") or not isinstance(value, int):
        raise ConfigError(f"unknown ArUco dictionary {name!r} (e.g. DICT_4X4_50)", "marker_dictionary")
    return cv2.aruco.getPredefinedDictionary(value)


def detect_markers(
    views: list[PosedView], dictionary: str = "DICT_4X4_50"
) -> dict[int, list[tuple[int, np.ndarray]]]:
    """Marker id -> [(view index, corners (4, 2) in pixels)] over all views."""
    detector = cv2.aruco.ArucoDetector(aruco_dictionary(dictionary), cv2.aruco.DetectorParameters())
    found: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, view in enumerate(views):
        if view.image is None:
            continue
        grey = cv2.cvtColor(view.image, cv2.COLOR_RGB2GRAY)
        corners, ids, _rejected = detector.detectMarkers(grey)
        if ids is None:
            continue
        for c, marker_id in zip(corners, ids.reshape(-1), strict=True):
            found.setdefault(int(marker_id), []).append((i, c.reshape(4, 2).astype(np.float64)))
    return found


def _normalised(view: PosedView, px: np.ndarray) -> np.ndarray:
    """Pixels (P, 2), OpenCV array coordinates -> undistorted normalised image coordinates (P, 2).
    The capture's intrinsics put pixel centres at +0.5 (COLMAP), hence the shift."""
    cam = view.camera
    k = np.asarray(cam.matrix())
    dist = np.asarray(cam.distortion if cam.model == "OPENCV" and cam.distortion else [], dtype=np.float64)
    return cv2.undistortPoints((px + 0.5).reshape(-1, 1, 2), k, dist if dist.size else None).reshape(-1, 2)


def triangulate(observations: list[tuple[PosedView, np.ndarray]]) -> np.ndarray:
    """Linear (DLT) triangulation of one point from (view, normalised xy (2,)) pairs -> (3,)."""
    rows = []
    for view, xy in observations:
        w2c = np.linalg.inv(view.c2w)[:3]  # (3, 4)
        rows.append(xy[0] * w2c[2] - w2c[0])
        rows.append(xy[1] * w2c[2] - w2c[1])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    x = vt[-1]
    return x[:3] / x[3]


def marker_scale(
    views: list[PosedView], marker_size_m: float = 0.10, dictionary: str = "DICT_4X4_50", min_views: int = 2
) -> MarkerScale | None:
    """Scale from the marker seen in the most views (at least ``min_views``), or None."""
    if marker_size_m <= 0:
        raise ConfigError(f"must be positive, got {marker_size_m}", "marker_size_m")
    found = detect_markers(views, dictionary)
    if not found:
        return None
    marker_id, seen = max(found.items(), key=lambda kv: len(kv[1]))
    if len(seen) < min_views:
        return None
    normalised = [(views[i], _normalised(views[i], c)) for i, c in seen]
    corners = np.stack([triangulate([(v, xy[k]) for v, xy in normalised]) for k in range(4)])  # (4, 3)
    edges = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)  # (4,)
    edge = float(edges.mean())
    if not np.isfinite(edge) or edge <= 0:
        return None
    return MarkerScale(marker_size_m / edge, marker_id, len(seen), edge, float(np.ptp(edges) / edge))
