"""Posed photos for baking and placement: image, intrinsics, camera-to-world pose, optional mask."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.capture import Camera, CaptureFolder, Manifest
from core.errors import InputError


@dataclass(frozen=True)
class PosedView:
    """One photo: image (H, W, 3) uint8 RGB, its camera, c2w (4, 4) OpenCV axes, mask (H, W) bool."""

    id: str
    image: np.ndarray
    camera: Camera
    c2w: np.ndarray
    mask: np.ndarray | None = None

    @property
    def center(self) -> np.ndarray:
        return self.c2w[:3, 3]

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """points (P, 3) world -> (P, 3) camera coordinates (z forward)."""
        r, t = self.c2w[:3, :3], self.c2w[:3, 3]
        return (points - t) @ r

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (P, 3) -> distorted pixels (P, 2), pinhole pixels (P, 2), depth z (P,)."""
        pc = self.world_to_camera(points)  # (P, 3)
        z = pc[:, 2]
        safe_z = np.where(np.abs(z) < 1e-12, 1e-12, z)
        x, y = pc[:, 0] / safe_z, pc[:, 1] / safe_z
        cam = self.camera
        pinhole = np.stack([cam.fx * x + cam.cx, cam.fy * y + cam.cy], axis=1)
        if cam.model == "OPENCV" and cam.distortion:
            k1, k2, p1, p2 = cam.distortion
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2 * r2
            xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            distorted = np.stack([cam.fx * xd + cam.cx, cam.fy * yd + cam.cy], axis=1)
        else:
            distorted = pinhole
        return distorted, pinhole, z


def _read_rgb(path: str, where: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("cannot read this image", where)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_posed_views(capture: CaptureFolder, manifest: Manifest | None = None, max_side: int = 0) -> list[PosedView]:
    """Every frame of ``capture`` that has both an image and a pose, optionally downscaled so its
    longer side is at most ``max_side`` pixels (0 keeps full resolution)."""
    manifest = manifest or capture.load()
    views = []
    for frame in manifest.frames:
        if frame.image is None or frame.pose is None:
            continue
        image = _read_rgb(str(capture.path(frame.image)), frame.image)
        cam = frame.camera
        if image.shape[:2] != (cam.height, cam.width):
            cam = cam.scaled(image.shape[1], image.shape[0])
        mask = None
        if frame.mask is not None:
            m = cv2.imread(str(capture.path(frame.mask)), cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise InputError("cannot read this mask", frame.mask)
            mask = cv2.resize(m, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        scale = max_side / max(image.shape[:2]) if max_side else 1.0
        if scale < 1.0:
            w, h = round(image.shape[1] * scale), round(image.shape[0] * scale)
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            cam = cam.scaled(w, h)
            if mask is not None:
                mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        views.append(PosedView(frame.id, image, cam, np.asarray(frame.pose, dtype=np.float64), mask))
    return views
