"""Lens models beyond the pinhole: OpenCV's radial-tangential (``OPENCV``: k1, k2, p1, p2) and
fisheye (``OPENCV_FISHEYE``: k1..k4, the Kannala-Brandt equidistant model COLMAP, nerfstudio and
cv2.fisheye share), and removing them so that stereo, meshing and training see pinhole images.

Intrinsics follow COLMAP: the centre of pixel (row i, column j) is the image point (j + 0.5,
i + 0.5); OpenCV puts it at (j, i), hence the half-pixel shift in ``opencv_matrix``.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.capture import Camera

FISHEYE = "OPENCV_FISHEYE"


def opencv_matrix(cam: Camera) -> np.ndarray:
    """(3, 3) camera matrix in OpenCV's pixel-centre convention."""
    k = np.array(cam.matrix(), np.float64)
    k[:2, 2] -= 0.5
    return k


def pinhole(cam: Camera) -> Camera:
    """The same intrinsics with no lens distortion."""
    return Camera(cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy)


def is_distorted(cam: Camera) -> bool:
    return bool(cam.distortion) and any(cam.distortion)


def undistort_image(image: np.ndarray, cam: Camera, *, nearest: bool = False) -> tuple[np.ndarray, Camera]:
    """``image`` (H, W[, C]) taken with ``cam`` (at the image's resolution), resampled as the pinhole
    camera with the same focal lengths and principal point; returns it and that camera. A fisheye
    view keeps its centre (what a pinhole of that focal length sees); pixels no lens ray reaches
    are black. ``nearest`` for maps that must not blend (depth, masks)."""
    if not is_distorted(cam):
        return image, pinhole(cam)
    k = opencv_matrix(cam)
    dist = np.asarray(cam.distortion, np.float64)
    size = (cam.width, cam.height)
    if cam.model == FISHEYE:
        map_x, map_y = cv2.fisheye.initUndistortRectifyMap(k, dist.reshape(4, 1), np.eye(3), k, size,
                                                           cv2.CV_32FC1)
    else:
        map_x, map_y = cv2.initUndistortRectifyMap(k, dist, np.eye(3), k, size, cv2.CV_32FC1)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, pinhole(cam)


def undistort_depth(depth: np.ndarray, cam: Camera, *, max_step: float = 0.03) -> np.ndarray:
    """A depth map (H, W) float, 0 = none, taken with ``cam`` (at its resolution) resampled as the
    pinhole camera (see ``undistort_image``). Smooth surfaces are interpolated bilinearly; where
    the source pixels around a sample differ by more than ``max_step`` of their depth or one of
    them has none (an edge, a hole) the nearest pixel is taken: depth is never blended across an edge."""
    if not is_distorted(cam):
        return depth
    src = np.asarray(depth, np.float32)
    valid = src > 0
    kernel = np.ones((3, 3), np.uint8)
    highest = cv2.dilate(src, kernel)
    lowest = cv2.erode(np.where(valid, src, np.float32(np.inf)), kernel)
    smooth = (valid & (cv2.erode(valid.astype(np.uint8), kernel) > 0)
              & (highest - lowest <= max_step * lowest)).astype(np.uint8)
    nearest = undistort_image(src, cam, nearest=True)[0]
    linear = undistort_image(src, cam)[0]
    blend_ok = undistort_image(smooth, cam, nearest=True)[0] > 0
    return np.where(blend_ok, linear, nearest)
