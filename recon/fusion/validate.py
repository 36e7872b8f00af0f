"""Checks on one RGB-D frame before it touches the volume: every problem is one InputError
whose ``where`` names the frame and whose message names the field (depth, confidence, color,
camera, c2w)."""

from __future__ import annotations

import math

import numpy as np

from core.capture import Camera
from core.errors import InputError

RIGID_TOLERANCE = 1e-3  # max |R^T R - I| and |det R - 1| of a rotation read from a file
ASPECT_TOLERANCE = 0.02  # relative; depth and colour must have the camera's aspect ratio


def check_camera(camera: object, frame: str) -> Camera:
    if not isinstance(camera, Camera):
        raise InputError(f"camera: missing intrinsics (got {type(camera).__name__})", frame)
    values = (camera.fx, camera.fy, camera.cx, camera.cy)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise InputError(f"camera: intrinsics must be finite numbers, got {values}", frame)
    if camera.fx <= 0 or camera.fy <= 0 or camera.width <= 0 or camera.height <= 0:
        raise InputError(
            f"camera: focal lengths and size must be positive, got fx={camera.fx} fy={camera.fy} "
            f"size={camera.width}x{camera.height}", frame,
        )
    return camera


def _check_aspect(name: str, shape: tuple[int, ...], camera: Camera, frame: str) -> None:
    h, w = shape[:2]
    ratio = (w / h) / (camera.width / camera.height)
    if abs(ratio - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"{name}: {w}x{h} does not have the camera's aspect ratio ({camera.width}x{camera.height})", frame
        )


def check_depth(depth: object, camera: Camera, depth_scale: float, frame: str) -> np.ndarray:
    """Depth in metres, (H, W) float32, 0 where there is no measurement (also NaN, inf, <= 0).

    depth: (H, W) uint16 (times depth_scale metres) or float32 metres.
    """
    if not isinstance(depth, np.ndarray) or depth.ndim != 2 or min(depth.shape) == 0:
        shape = getattr(depth, "shape", None)
        kind = type(depth).__name__
        raise InputError(f"depth: expected an (H, W) array, got {kind} of shape {shape}", frame)
    if depth.dtype == np.uint16:
        if not (math.isfinite(depth_scale) and depth_scale > 0):
            raise InputError(f"depth_scale: expected a positive number, got {depth_scale}", frame)
        metres = depth.astype(np.float32) * np.float32(depth_scale)
    elif depth.dtype == np.float32:
        metres = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0.0))
    else:
        raise InputError(f"depth: expected uint16 (scaled) or float32 (metres), got {depth.dtype}", frame)
    _check_aspect("depth", depth.shape, camera, frame)
    return np.ascontiguousarray(metres, dtype=np.float32)


def check_confidence(confidence: object, shape: tuple[int, int], frame: str) -> np.ndarray | None:
    """(H, W) uint8 ARKit levels (0 low, 1 medium, 2 high) at the depth map's size."""
    if confidence is None:
        return None
    if not isinstance(confidence, np.ndarray) or confidence.dtype != np.uint8:
        kind = getattr(confidence, "dtype", type(confidence).__name__)
        raise InputError(f"confidence: expected a uint8 array, got {kind}", frame)
    if confidence.shape != shape:
        raise InputError(f"confidence: shape {confidence.shape} differs from the depth map's {shape}", frame)
    return confidence


def check_color(color: object, camera: Camera, frame: str) -> np.ndarray | None:
    """(h, w, 3) uint8 RGB at any size with the camera's aspect ratio."""
    if color is None:
        return None
    if not isinstance(color, np.ndarray) or color.dtype != np.uint8:
        kind = getattr(color, "dtype", type(color).__name__)
        raise InputError(f"color: expected a uint8 array, got {kind}", frame)
    if color.ndim != 3 or color.shape[2] != 3 or min(color.shape[:2]) == 0:
        raise InputError(f"color: expected an (h, w, 3) RGB array, got shape {color.shape}", frame)
    _check_aspect("color", color.shape, camera, frame)
    return color


def check_pose(c2w: object, frame: str) -> np.ndarray:
    """A rigid (4, 4) camera-to-world matrix as float64."""
    try:
        pose = np.asarray(c2w, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("c2w: expected a 4x4 matrix of numbers", frame) from None
    if pose.shape != (4, 4):
        raise InputError(f"c2w: expected a 4x4 matrix, got shape {pose.shape}", frame)
    if not np.all(np.isfinite(pose)):
        raise InputError("c2w: contains NaN or inf", frame)
    if not np.allclose(pose[3], (0.0, 0.0, 0.0, 1.0), atol=1e-9):
        raise InputError(f"c2w: last row must be [0, 0, 0, 1], got {pose[3].tolist()}", frame)
    rot = pose[:3, :3]
    off = np.abs(rot.T @ rot - np.eye(3)).max()
    det = np.linalg.det(rot)
    if off > RIGID_TOLERANCE or abs(det - 1.0) > RIGID_TOLERANCE:
        raise InputError(
            f"c2w: not a rigid motion (|R^T R - I| = {off:.2g}, det R = {det:.4g}); "
            "poses must be rotations plus translations", frame,
        )
    return pose


def world_to_camera(c2w: np.ndarray) -> np.ndarray:
    """Inverse of a rigid pose without a general inverse. (4, 4) -> (4, 4)"""
    w2c = np.eye(4)
    w2c[:3, :3] = c2w[:3, :3].T
    w2c[:3, 3] = -c2w[:3, :3].T @ c2w[:3, 3]
    return w2c
