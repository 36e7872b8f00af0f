"""Device poses (ARKit, Record3D, a transforms.json): keep them, triangulate a sparse cloud.

With images, features are extracted and matched as for SfM, then pycolmap triangulates points
from the fixed, known poses (no pose is changed, so metric scale is kept); the reprojection
error and points per frame are reported as a check of the poses. Depth-only frames get their
sparse cloud by back-projecting a grid of confident depth pixels instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from core.capture import Camera, Frame
from core.progress import CancelToken, Progress
from recon.poses.config import AttemptSettings
from recon.poses.features import ImageEntry, colmap_cancellation, extract, match
from recon.poses.mapping import incremental_options


def known_model(database: Path, poses: dict[str, np.ndarray]) -> pycolmap.Reconstruction:
    """A reconstruction with the database's cameras and images at the known poses, no points.

    poses: {image name: (4, 4) OpenCV camera-to-world}
    """
    db = pycolmap.Database.open(database)
    try:
        cameras, images = db.read_all_cameras(), db.read_all_images()
    finally:
        db.close()
    model = pycolmap.Reconstruction()
    for cam in cameras:
        model.add_camera_with_trivial_rig(cam)
    for im in images:
        c2w = poses[im.name]
        cam_from_world = pycolmap.Rigid3d(np.linalg.inv(c2w)[:3, :])
        model.add_image_with_trivial_frame(
            pycolmap.Image(name=im.name, camera_id=im.camera_id, image_id=im.image_id), cam_from_world
        )
    return model


def triangulate_known(
    capture_root: Path,
    entries: Sequence[ImageEntry],
    cameras: Sequence[Camera],
    poses: dict[str, np.ndarray],
    settings: AttemptSettings,
    work_dir: Path,
    *,
    num_threads: int,
    seed: int,
    progress: Progress,
    cancel: CancelToken,
) -> tuple[pycolmap.Reconstruction, Path]:
    """Features, matches and points triangulated from the known poses; returns the model and
    the database it came from."""
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    extract(database, capture_root, entries, cameras, settings, prior_focal=True, for_sfm=False,
            num_threads=num_threads, progress=progress.sub(0.0, 0.4), cancel=cancel)
    match(database, entries, settings, num_threads=num_threads, seed=seed, work_dir=work_dir,
          progress=progress.sub(0.4, 0.8), cancel=cancel)
    progress.update(0.8, "triangulating points from the device poses")
    model = known_model(database, poses)
    options = incremental_options(settings, num_threads, seed)
    with colmap_cancellation(cancel) as token:
        model = pycolmap.triangulate_points(
            model, database, capture_root, work_dir / "triangulated", clear_points=True,
            options=options, refine_intrinsics=False, cancellation_token=token,
        )
    cancel.check()
    model.extract_colors_for_all_images(str(capture_root))
    progress.update(1.0, f"triangulated {model.num_points3D()} points")
    return model, database


def depth_points(
    capture_root: Path, frames: Sequence[Frame], step: int = 8, max_points: int = 200_000, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A sparse cloud from depth maps: every ``step``-th pixel with depth (and confidence >= 1).

    -> xyz (N, 3) float64 in the poses' world frame, rgb (N, 3) uint8 (grey: no colour)
    """
    chunks = []
    for fr in frames:
        if fr.depth is None or fr.pose is None:
            continue
        depth = cv2.imread(str(capture_root / fr.depth), cv2.IMREAD_UNCHANGED)  # (h, w) uint16
        if depth is None:
            continue
        h, w = depth.shape[:2]
        cam = fr.camera.scaled(w, h)
        v, u = np.mgrid[step // 2:h:step, step // 2:w:step]  # (gh, gw) each
        z = depth[v, u].astype(np.float64) * fr.depth_scale  # (gh, gw) metres
        keep = z > 0
        if fr.confidence is not None:
            conf = cv2.imread(str(capture_root / fr.confidence), cv2.IMREAD_UNCHANGED)
            if conf is not None and conf.shape[:2] == (h, w):
                keep &= conf[v, u] >= 1
        u, v, z = u[keep] + 0.5, v[keep] + 0.5, z[keep]  # (K,) each
        cam_pts = np.stack([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], axis=1)  # (K, 3)
        c2w = np.asarray(fr.pose, dtype=np.float64)  # (4, 4)
        chunks.append(cam_pts @ c2w[:3, :3].T + c2w[:3, 3])
    xyz = np.concatenate(chunks) if chunks else np.zeros((0, 3))
    if len(xyz) > max_points:
        xyz = xyz[np.random.default_rng(seed).choice(len(xyz), max_points, replace=False)]
    return xyz, np.full((len(xyz), 3), 160, np.uint8)
