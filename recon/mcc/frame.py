"""One RGB-D view to the network's inputs, the same way for training and for inference.

The object's pixels (a mask) are cropped square with a margin, the RGB resized to the encoder's
size and the per-pixel camera-frame points to the point encoder's; the points are normalised
(divided by the mean per-axis spread, centred on their mean) so the network sees every object at
about the same size. ``PreparedView.to_camera`` undoes it for predicted points.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import InputError

MIN_SEEN_POINTS = 32  # fewer valid object pixels than this is no object to complete
MIN_SPREAD_M = 1e-4


@dataclass(frozen=True)
class PreparedView:
    rgb: np.ndarray  # [3, R, R] float32 in 0..1
    xyz: np.ndarray  # [S, S, 3] float32 normalised camera-frame points (0 where not valid)
    valid: np.ndarray  # [S, S] bool
    centre: np.ndarray  # (3,) camera-frame metres
    scale: float  # metres per normalised unit
    box: tuple[int, int, int, int]  # the square crop in the image: x0, y0, side, side

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return points * self.scale + self.centre

    def to_normalised(self, points: np.ndarray) -> np.ndarray:
        return (points - self.centre) / self.scale


def backproject(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Depth [H, W] in metres (0 or non-finite: none) to camera-frame points [H, W, 3] (NaN: none);
    OpenCV camera: x right, y down, z forward."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5)
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
    return np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], axis=-1)


def square_box(mask: np.ndarray, margin: float) -> tuple[int, int, int]:
    """The mask's bounding box, grown by ``margin`` of its longer side each way, made square:
    (x0, y0, side); it may reach outside the image (the crop pads there)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise InputError("the object mask is empty", "mask")
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = int(np.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), max(side, 1)


def _crop(image: np.ndarray, x0: int, y0: int, side: int, fill: float) -> np.ndarray:
    h, w = image.shape[:2]
    out = np.full((side, side, *image.shape[2:]), fill, dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def prepare_view(rgb: np.ndarray, points: np.ndarray, mask: np.ndarray, rgb_size: int, xyz_size: int,
                 margin: float = 0.1, shrink: float = 10.0) -> PreparedView:
    """rgb [H, W, 3] uint8; points [H, W, 3] camera-frame metres (NaN: no depth) at the same size;
    mask [H, W] bool, the object's pixels."""
    if rgb.shape[:2] != points.shape[:2] or mask.shape != points.shape[:2]:
        raise InputError(f"image {rgb.shape[:2]}, points {points.shape[:2]} and mask {mask.shape} differ",
                         "frame")
    seen = mask & np.isfinite(points).all(axis=-1)
    if seen.sum() < MIN_SEEN_POINTS:
        raise InputError(f"only {int(seen.sum())} object pixels have depth (need {MIN_SEEN_POINTS})", "mask")
    x0, y0, side = square_box(seen, margin)
    pts = np.where(seen[..., None], points, np.nan).astype(np.float32)
    rgb_crop = cv2.resize(_crop(rgb, x0, y0, side, 0), (rgb_size, rgb_size),
                          interpolation=cv2.INTER_AREA if side > rgb_size else cv2.INTER_LINEAR)
    xyz = cv2.resize(_crop(pts, x0, y0, side, np.nan), (xyz_size, xyz_size), interpolation=cv2.INTER_NEAREST)
    valid = np.isfinite(xyz).all(axis=-1)
    if valid.sum() < 8:
        raise InputError("the object is too small in this frame to complete", "mask")
    seen_points = pts[seen]
    centre = seen_points.mean(axis=0).astype(np.float64)
    scale = float(seen_points.std(axis=0).mean())
    if not np.isfinite(scale) or scale < MIN_SPREAD_M:
        raise InputError("the object's seen points have no spread", "mask")
    norm = np.where(valid[..., None], (xyz - centre) / scale, 0).astype(np.float32)
    r = np.linalg.norm(norm, axis=-1, keepdims=True)
    norm = np.where(r > shrink, norm / np.maximum(r, 1e-12) * shrink * (2 - shrink / np.maximum(r, 1e-12)),
                    norm).astype(np.float32)
    rgb_out = (rgb_crop.astype(np.float32) / 255.0).transpose(2, 0, 1)
    return PreparedView(np.ascontiguousarray(rgb_out), norm, valid, centre, scale, (x0, y0, side, side))
