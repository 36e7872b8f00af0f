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
    """Marker id -> [(view index, corners (4, 2) in pixels, refined)] over all views."""
    aruco_dict = aruco_dictionary(dictionary)
    detector = cv2.aruco.ArucoDetector(aruco_dict, cv2.aruco.DetectorParameters())
    cells = aruco_dict.markerSize + 2  # the code bits and the black border, per side
    found: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, view in enumerate(views):
        if view.image is None:
            continue
        grey = cv2.cvtColor(view.image, cv2.COLOR_RGB2GRAY)
        corners, ids, _rejected = detector.detectMarkers(grey)
        if ids is None:
            continue
        for c, marker_id in zip(corners, ids.reshape(-1), strict=True):
            refined = refine_corners(grey, c.reshape(4, 2).astype(np.float64), cells)
            found.setdefault(int(marker_id), []).append((i, refined))
    return found


# The detector's corners come from the thresholded black region's outline, which runs through the
# centres of its outermost dark pixels (and shrinks further where blur greys the rim): the square
# measured about a pixel too small, so small markers made models 4-15 % too large. Each edge is
# found instead where the intensity crosses halfway from the black border to the white paper,
# which blur does not move, and the corners are where the edge lines meet.
EDGE_SAMPLES = 12  # profiles across each edge
EDGE_STEP_PX = 0.1  # along a profile
MIN_EDGE_CONTRAST = 30.0  # grey levels between the border and the paper


def _edge_points(
    grey: np.ndarray, a: np.ndarray, b: np.ndarray, outward: np.ndarray, cell: float
) -> np.ndarray:
    """Sub-pixel points (K, 2) on the dark-to-light edge near segment a-b ((0, 2) if unclear).
    ``cell``: one code cell in pixels. Profiles reach half a cell in (the middle of the black
    border, its darkest) and a cell and a half out, onto the paper's margin."""
    inside = float(np.clip(0.5 * cell, 1.0, 8.0))
    outside = float(np.clip(1.5 * cell, 2.0, 12.0))
    offsets = np.arange(-inside, outside + EDGE_STEP_PX / 2, EDGE_STEP_PX)  # (O,)
    along = np.linspace(0.2, 0.8, EDGE_SAMPLES)  # clear of the corners
    base = a[None] + along[:, None] * (b - a)[None]  # (K, 2)
    pts = base[:, None, :] + offsets[None, :, None] * outward[None, None, :]  # (K, O, 2)
    xs, ys = pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32)
    profile = cv2.remap(grey.astype(np.float32), xs, ys, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)  # (K, O)
    dark = profile[:, offsets <= -0.8 * inside].mean(axis=1)
    light = np.median(profile[:, offsets >= 0.6 * outside], axis=1)
    out = []
    for k in range(len(base)):
        if light[k] - dark[k] < MIN_EDGE_CONTRAST:
            continue
        above = profile[k] >= (dark[k] + light[k]) / 2
        crossings = np.flatnonzero(~above[:-1] & above[1:])
        if len(crossings) == 0:
            continue
        j = crossings[np.argmin(np.abs(offsets[crossings]))]  # the crossing nearest the outline
        half = (dark[k] + light[k]) / 2
        frac = (half - profile[k, j]) / max(profile[k, j + 1] - profile[k, j], 1e-6)
        out.append(base[k] + (offsets[j] + frac * EDGE_STEP_PX) * outward)
    return np.asarray(out).reshape(-1, 2)


def refine_corners(grey: np.ndarray, corners: np.ndarray, cells: int) -> np.ndarray:
    """The marker's corners (4, 2) where its four outer edges meet, each edge fitted to where the
    image crosses halfway from the black border to the paper. Keeps the detector's corners when
    an edge cannot be measured (low contrast, an edge out of the image)."""
    centre = corners.mean(axis=0)
    lines = []
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        length = float(np.linalg.norm(b - a))
        if length < 4:
            return corners
        direction = (b - a) / length
        outward = np.array([direction[1], -direction[0]])
        if np.dot(outward, (a + b) / 2 - centre) < 0:
            outward = -outward
        pts = _edge_points(grey, a, b, outward, length / cells)
        if len(pts) < EDGE_SAMPLES // 2:
            return corners
        mid = pts.mean(axis=0)
        _, _, vt = np.linalg.svd(pts - mid)
        normal = vt[1]
        lines.append((normal, float(np.dot(normal, mid))))  # normal . x = d
    refined = np.empty_like(corners)
    for k in range(4):  # corner k lies on edge k-1 (into it) and edge k (out of it)
        (n1, d1), (n2, d2) = lines[k - 1], lines[k]
        m = np.stack([n1, n2])
        if abs(np.linalg.det(m)) < 1e-6:
            return corners
        refined[k] = np.linalg.solve(m, [d1, d2])
    if np.max(np.linalg.norm(refined - corners, axis=1)) > 3.0:
        return corners  # not the square the detector saw
    return refined


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


# A printed marker is a flat square: what does not triangulate to one is a false detection (a
# window of a building, a tile pattern) and must not set the model's size.
MAX_EDGE_SPREAD = 0.08  # (max - min) / mean of the four edges
MAX_DIAGONAL_ERROR = 0.08  # |diagonal / (edge * sqrt 2) - 1|
MAX_REPROJECTION_PX = 3.0  # median over views and corners


def _reprojection_px(view: PosedView, point: np.ndarray, px: np.ndarray) -> float:
    w2c = np.linalg.inv(view.c2w)
    x = w2c[:3, :3] @ point + w2c[:3, 3]
    if x[2] <= 0:
        return float("inf")
    cam = view.camera
    u = cam.fx * x[0] / x[2] + cam.cx - 0.5  # back to OpenCV array coordinates
    v = cam.fy * x[1] / x[2] + cam.cy - 0.5
    return float(np.hypot(u - px[0], v - px[1]))


def _square(
    views: list[PosedView], seen: list[tuple[int, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The triangulated corners (4, 3) and edges (4,) if they form the printed square, else None."""
    normalised = [(views[i], _normalised(views[i], c)) for i, c in seen]
    corners = np.stack([triangulate([(v, xy[k]) for v, xy in normalised]) for k in range(4)])  # (4, 3)
    if not np.all(np.isfinite(corners)):
        return None
    edges = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)  # (4,)
    edge = float(edges.mean())
    if edge <= 0 or np.ptp(edges) / edge > MAX_EDGE_SPREAD:
        return None
    diagonals = np.linalg.norm(corners[:2] - corners[2:], axis=1)  # (2,)
    if np.max(np.abs(diagonals / (edge * np.sqrt(2.0)) - 1.0)) > MAX_DIAGONAL_ERROR:
        return None
    errors = [_reprojection_px(views[i], corners[k], c[k]) for i, c in seen for k in range(4)]
    if float(np.median(errors)) > MAX_REPROJECTION_PX:
        return None
    return corners, edges


def marker_scale(
    views: list[PosedView], marker_size_m: float = 0.10, dictionary: str = "DICT_4X4_50", min_views: int = 2
) -> MarkerScale | None:
    """Scale from the marker seen in the most views (at least ``min_views``) whose corners
    triangulate to a square; None when no detection passes (see the limits above)."""
    if marker_size_m <= 0:
        raise ConfigError(f"must be positive, got {marker_size_m}", "marker_size_m")
    found = detect_markers(views, dictionary)
    for marker_id, seen in sorted(found.items(), key=lambda kv: -len(kv[1])):
        if len(seen) < min_views:
            break
        square = _square(views, seen)
        if square is None:
            continue
        _corners, edges = square
        edge = float(edges.mean())
        return MarkerScale(marker_size_m / edge, marker_id, len(seen), edge, float(np.ptp(edges) / edge))
    return None
