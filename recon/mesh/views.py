"""Posed photos for baking and placement: image, intrinsics, camera-to-world pose, optional mask."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.capture import Camera, CaptureFolder
from core.errors import InputError
from recon.posed import load_posed_frames, read_rgb_undistorted


@dataclass(frozen=True)
class PosedView:
    """One photo: image (H, W, 3) uint8 RGB (None for a pose-only frame of a depth-only capture),
    its camera, c2w (4, 4) OpenCV axes, mask (H, W) bool."""

    id: str
    image: np.ndarray | None
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
        """World points (P, 3) -> distorted pixels (P, 2), pinhole pixels (P, 2), depth z (P,).

        Pixels are array coordinates: pixel (row i, column j) is centred on (j, i), which is the
        image point (j + 0.5, i + 0.5) of the capture format's (COLMAP) intrinsics."""
        pc = self.world_to_camera(points)  # (P, 3)
        z = pc[:, 2]
        safe_z = np.where(np.abs(z) < 1e-12, 1e-12, z)
        x, y = pc[:, 0] / safe_z, pc[:, 1] / safe_z
        cam = self.camera
        pinhole = np.stack([cam.fx * x + cam.cx - 0.5, cam.fy * y + cam.cy - 0.5], axis=1)
        if cam.model == "OPENCV" and cam.distortion:
            k1, k2, p1, p2 = cam.distortion
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2 * r2
            xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            distorted = np.stack([cam.fx * xd + cam.cx - 0.5, cam.fy * yd + cam.cy - 0.5], axis=1)
        else:
            distorted = pinhole
        return distorted, pinhole, z


def load_views(
    capture: CaptureFolder, poses_run: Path | None = None, max_side: int = 0, max_views: int = 0
) -> list[PosedView]:
    """The registered frames with images (from ``poses_run``/poses.json, else capture.json), lens
    distortion removed, downscaled so the longer side is at most ``max_side`` (0: keep), and at
    most ``max_views`` of them evenly spread over the capture (0: all). Empty when no posed
    frame has an image (a depth-only capture); StageError when no frame has a pose."""
    frames = [f for f in load_posed_frames(capture, poses_run) if f.image is not None]
    if max_views and len(frames) > max_views:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_views).round().astype(int)]
    views = []
    for frame in frames:
        image, cam = read_rgb_undistorted(frame)
        mask = None
        if frame.mask is not None:
            m = cv2.imread(str(frame.mask), cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise InputError("cannot read this mask", frame.mask)
            mask = cv2.resize(m, (cam.width, cam.height), interpolation=cv2.INTER_NEAREST) > 0
        scale = max_side / max(image.shape[:2]) if max_side else 1.0
        if scale < 1.0:
            w, h = round(image.shape[1] * scale), round(image.shape[0] * scale)
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            cam = cam.scaled(w, h)
            if mask is not None:
                mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        views.append(PosedView(frame.frame_id, image, cam, frame.c2w, mask))
    return views


def pose_only_views(capture: CaptureFolder, poses_run: Path | None = None) -> list[PosedView]:
    """Every posed frame as a view without an image: enough for cropping and placement."""
    return [PosedView(f.frame_id, None, f.camera, f.c2w) for f in load_posed_frames(capture, poses_run)]
