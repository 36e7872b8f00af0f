"""Training views (downscaled undistorted photos with their cameras) and the points that seed
the Gaussians: the poses run's SfM points, else the frames' depth maps, else random points in
the region the cameras look at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.capture import Camera, CaptureFolder
from core.errors import InputError, ReconstructionError
from recon.posed import PosedFrame, load_posed_frames, read_rgb_undistorted


@dataclass(frozen=True, eq=False)
class TrainView:
    name: str
    rgb: np.ndarray  # (H, W, 3) float32 0..1
    camera: Camera  # pinhole at this size
    c2w: np.ndarray  # (4, 4) OpenCV camera-to-world

    @property
    def K(self) -> np.ndarray:
        c = self.camera
        return np.array([[c.fx, 0.0, c.cx], [0.0, c.fy, c.cy], [0.0, 0.0, 1.0]], np.float32)

    @property
    def viewmat(self) -> np.ndarray:
        return np.linalg.inv(self.c2w).astype(np.float32)


def load_views(capture: CaptureFolder, poses_run: Path | None, max_side: int) -> list[TrainView]:
    """Every posed photo, undistorted and downscaled so its longer side is at most ``max_side``."""
    frames = [f for f in load_posed_frames(capture, poses_run) if f.image is not None]
    if len(frames) < 2:
        raise ReconstructionError(f"splatting needs at least 2 posed photos, got {len(frames)}")
    return [_view(f, max_side) for f in frames]


def _view(frame: PosedFrame, max_side: int) -> TrainView:
    rgb, cam = read_rgb_undistorted(frame)
    h, w = rgb.shape[:2]
    factor = min(1.0, max_side / max(w, h))
    if factor < 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        cam = cam.scaled(*size)
    return TrainView(frame.frame_id, rgb.astype(np.float32) / 255.0, cam, frame.c2w)


def sparse_points(poses_run: Path | None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(N, 3) points and (N, 3) 0..1 colours from the poses run's sparse.ply, if it has one."""
    if poses_run is None or not (Path(poses_run) / "sparse.ply").is_file():
        return None
    import open3d as o3d

    cloud = o3d.io.read_point_cloud(str(Path(poses_run) / "sparse.ply"))
    pts = np.asarray(cloud.points, np.float32)
    if len(pts) < 4:
        return None
    cols = np.asarray(cloud.colors, np.float32) if cloud.has_colors() else None
    return pts, cols


def depth_points(capture: CaptureFolder, views: list[TrainView], count: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Up to ``count`` points back-projected from the frames' depth maps, coloured by the photos."""
    frames = {f.id: f for f in capture.load().frames}
    rng = np.random.default_rng(seed)
    per_view = max(1, count // max(1, len(views)))
    pts, cols = [], []
    for view in views:
        frame = frames.get(view.name)
        if frame is None or not frame.depth:
            continue
        raw = cv2.imread(str(capture.path(frame.depth)), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 2:
            raise InputError("cannot read depth map", capture.path(frame.depth))
        metres = raw.astype(np.float32) * np.float32(frame.depth_scale)
        h, w = view.rgb.shape[:2]
        metres = cv2.resize(metres, (w, h), interpolation=cv2.INTER_NEAREST)
        ii, jj = np.nonzero(np.isfinite(metres) & (metres > 0))
        if len(ii) == 0:
            continue
        pick = rng.choice(len(ii), size=min(per_view, len(ii)), replace=False)
        ii, jj = ii[pick], jj[pick]
        z = metres[ii, jj]
        c = view.camera
        p_cam = np.stack([(jj + 0.5 - c.cx) / c.fx * z, (ii + 0.5 - c.cy) / c.fy * z, z], axis=1)
        pts.append(p_cam @ view.c2w[:3, :3].T + view.c2w[:3, 3])
        cols.append(view.rgb[ii, jj])
    if not pts:
        return None
    return np.concatenate(pts).astype(np.float32), np.concatenate(cols).astype(np.float32)


def random_points(views: list[TrainView], count: int, seed: int = 0) -> np.ndarray:
    """Uniform points in a box around the point the cameras look at (a last resort)."""
    centers = np.array([v.c2w[:3, 3] for v in views])
    axes = np.array([v.c2w[:3, 2] for v in views])
    # Least-squares point nearest to every optical axis.
    eye = np.eye(3)
    A = sum(eye - np.outer(a, a) for a in axes)
    b = sum((eye - np.outer(a, a)) @ c for a, c in zip(axes, centers, strict=True))
    target = np.linalg.lstsq(A, b, rcond=None)[0]
    half = 0.5 * float(np.median(np.linalg.norm(centers - target, axis=1)))
    rng = np.random.default_rng(seed)
    return (target + rng.uniform(-half, half, size=(count, 3))).astype(np.float32)
