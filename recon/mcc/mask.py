"""Which pixels of a depth frame are the object: the capture's mask, a box, or the depth itself.

From depth alone: the dominant plane (table or floor, when it covers a good share of the frame)
is removed with everything beyond it, the rest is cut at depth discontinuities, and the
connected region nearest the image centre is the object.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.errors import InputError

PLANE_MIN_SHARE = 0.15  # a plane over this share of the valid pixels is the support surface
MIN_REGION_SHARE = 0.002


def fit_plane(points: np.ndarray, tolerance: float, rng: np.random.Generator,
              tries: int = 200) -> tuple[np.ndarray, float, np.ndarray] | None:
    """RANSAC plane (unit normal n, offset d with n.p + d = 0) over points [N, 3] and its inliers."""
    if len(points) < 3:
        return None
    best: tuple[np.ndarray, float, np.ndarray] | None = None
    sample = points if len(points) <= 20000 else points[rng.choice(len(points), 20000, replace=False)]
    for _ in range(tries):
        a, b, c = sample[rng.choice(len(sample), 3, replace=False)]
        n = np.cross(b - a, c - a)
        length = np.linalg.norm(n)
        if length < 1e-12:
            continue
        n = n / length
        d = -float(n @ a)
        count = int((np.abs(sample @ n + d) < tolerance).sum())
        if best is None or count > best[2].sum():
            best = (n, d, np.abs(sample @ n + d) < tolerance)
    if best is None:
        return None
    n, d, _ = best
    return n, d, np.abs(points @ n + d) < tolerance


def support_side(points: np.ndarray, valid: np.ndarray, tolerance: float, rng: np.random.Generator,
                 region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Pixels on or beyond the supporting surface (table, floor): the dominant plane when it covers
    a good share of ``valid``, reaches the image's edge (an object's own face is surrounded by
    other pixels) and leaves something in front of it; all False otherwise."""
    none = np.zeros(valid.shape, bool)
    plane = fit_plane(points[valid], tolerance, rng)
    if plane is None or plane[2].mean() <= PLANE_MIN_SHARE:
        return none
    n, d, _ = plane
    if d < 0:  # orient so the camera (the origin) is on the positive side
        n, d = -n, -d
    side = np.where(valid, points @ n + d, np.inf)
    on_plane = valid & (np.abs(side) < tolerance)
    x0, y0, x1, y1 = region if region is not None else (0, 0, valid.shape[1], valid.shape[0])
    band = max(2, round(0.03 * min(x1 - x0, y1 - y0)))
    edge = np.zeros_like(valid)
    edge[y0:y1, x0:x1] = True
    edge[y0 + band:y1 - band, x0 + band:x1 - band] = False
    beyond = valid & (side <= tolerance)
    if (on_plane & edge).sum() < band * 4 or (valid & ~beyond).sum() < 0.01 * valid.sum():
        return none
    return beyond


def mask_from_depth(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """points [H, W, 3] camera-frame metres (NaN: none) -> the object's pixels [H, W] bool."""
    valid = np.isfinite(points).all(axis=-1)
    if valid.sum() < 64:
        raise InputError("this frame has almost no depth", "depth")
    keep = valid.copy()
    z = np.where(valid, points[..., 2], np.nan)
    median = float(np.nanmedian(z))
    rng = np.random.default_rng(seed)
    keep &= ~support_side(points, valid, max(0.01, 0.015 * median), rng)
    candidates = keep.copy()
    # depth discontinuities: a jump of more than 4 % of the depth between neighbours
    zf = np.where(valid, z, 0).astype(np.float32)
    jump = np.zeros_like(valid)
    dz_x = np.abs(np.diff(zf, axis=1)) > 0.04 * np.maximum(zf[:, 1:], zf[:, :-1])
    dz_y = np.abs(np.diff(zf, axis=0)) > 0.04 * np.maximum(zf[1:], zf[:-1])
    jump[:, 1:] |= dz_x
    jump[:, :-1] |= dz_x
    jump[1:] |= dz_y
    jump[:-1] |= dz_y
    keep &= ~jump
    count, labels = cv2.connectedComponents(keep.astype(np.uint8), connectivity=4)
    h, w = keep.shape
    yy, xx = np.mgrid[0:h, 0:w]
    best, best_score = 0, np.inf
    for label in range(1, count):
        region = labels == label
        size = int(region.sum())
        if size < MIN_REGION_SHARE * valid.sum():
            continue
        # nearest to the centre, larger regions preferred among near ones
        dist = np.hypot(xx[region].mean() / w - 0.5, yy[region].mean() / h - 0.5)
        score = dist - 0.5 * np.sqrt(size / (h * w))
        if score < best_score:
            best, best_score = label, score
    if best == 0:
        raise InputError("no object stands out in this frame's depth; draw a box around it", "depth")
    # the region's own edge pixels (cut off as jumps) come back: one pixel around it
    grown = cv2.dilate((labels == best).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return grown & candidates


def mask_from_box(points: np.ndarray, box: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """The pixels with depth inside ``box`` (x0, y0, x1, y1 at the depth's size), less the support plane."""
    h, w = points.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = max(0, min(x0, x1)), min(w, max(x0, x1))
    y0, y1 = max(0, min(y0, y1)), min(h, max(y0, y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise InputError(f"the box {list(box)} holds no pixels of this {w}x{h} frame", "mcc.box")
    inside = np.zeros((h, w), bool)
    inside[y0:y1, x0:x1] = True
    inside &= np.isfinite(points).all(axis=-1)
    pts = points[inside]
    if len(pts) < 32:
        raise InputError("the box holds almost no depth", "mcc.box")
    median = float(np.median(pts[:, 2]))
    inside &= ~support_side(points, inside, max(0.01, 0.015 * median), np.random.default_rng(seed),
                            (x0, y0, x1, y1))
    return inside
