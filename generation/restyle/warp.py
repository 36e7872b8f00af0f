"""Moving pixels between a capture's frames with its own depth and camera poses (no optical flow),
and the temporal-consistency figure built on it: the warped error between consecutive frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.capture import Camera

DEPTH_TOLERANCE = 0.05  # a reprojected point is visible in the source if its depth agrees to 5 %


@dataclass(frozen=True)
class View:
    """Where a frame was seen from: z-depth in metres (0 = unknown), OpenCV camera-to-world, intrinsics."""

    depth: np.ndarray  # (H, W) float32
    c2w: np.ndarray  # (4, 4)
    camera: Camera  # at the depth map's resolution


def reproject(target: View, source: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each target pixel, where it lands in the source image: (x, y) pixel coordinates (pixel
    centres at integers, for cv2.remap) and whether the source saw that point (depth test)."""
    cam = target.camera
    h, w = target.depth.shape
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5, np.arange(h, dtype=np.float64) + 0.5)
    z = target.depth.astype(np.float64)
    points = np.stack([(cols - cam.cx) / cam.fx * z, (rows - cam.cy) / cam.fy * z, z], axis=-1)
    world = points @ target.c2w[:3, :3].T + target.c2w[:3, 3]
    src_rot, src_pos = source.c2w[:3, :3], source.c2w[:3, 3]
    in_source = (world - src_pos) @ src_rot  # R^T (p - t), row-wise
    zs = in_source[..., 2]
    safe = np.where(zs > 1e-6, zs, 1.0)
    sc = source.camera
    x = sc.fx * in_source[..., 0] / safe + sc.cx - 0.5
    y = sc.fy * in_source[..., 1] / safe + sc.cy - 0.5
    sh, sw = source.depth.shape
    inside = (z > 0) & (zs > 1e-6) & (x >= -0.5) & (x <= sw - 0.5) & (y >= -0.5) & (y <= sh - 0.5)
    xi = np.clip(np.rint(x), 0, sw - 1).astype(np.int64)
    yi = np.clip(np.rint(y), 0, sh - 1).astype(np.int64)
    seen = source.depth[yi, xi].astype(np.float64)
    visible = inside & (seen > 0) & (np.abs(seen - zs) <= DEPTH_TOLERANCE * zs)
    return x.astype(np.float32), y.astype(np.float32), visible


def warp_image(image: np.ndarray, target: View, source: View) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (seen from ``source``) as seen from ``target``: (warped float32, valid mask)."""
    x, y, valid = reproject(target, source)
    warped = cv2.remap(image.astype(np.float32), x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if warped.ndim == 2 and image.ndim == 3:
        warped = warped[..., None]
    return warped, valid


def warped_error(frames: Sequence[np.ndarray], views: Sequence[View], min_valid: int = 16) -> float:
    """Mean absolute difference (0..255 scale) between each frame and the one before it warped into
    it, over the pixels both saw; averaged over consecutive pairs with at least ``min_valid`` of them."""
    errors = []
    for prev, cur, v_prev, v_cur in zip(frames, frames[1:], views, views[1:], strict=False):
        warped, valid = warp_image(prev, v_cur, v_prev)
        if valid.sum() >= min_valid:
            errors.append(float(np.abs(cur.astype(np.float32) - warped)[valid].mean()))
    if not errors:
        raise ValueError("no consecutive frames overlap")
    return float(np.mean(errors))
