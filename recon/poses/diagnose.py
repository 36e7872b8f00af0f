"""Why a frame did not register: one short reason per frame, most basic cause first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from recon.poses.features import ImageEntry


def sharpness(path: Path, max_side: int = 640) -> float | None:
    """Variance of the Laplacian of the image, downscaled to ``max_side``; None if unreadable."""
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)  # (H, W) uint8
    if gray is None:
        return None
    scale = max_side / max(gray.shape)
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def _database_counts(database: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Keypoints per image name, and the best verified pair's inlier count per image name."""
    db = pycolmap.Database.open(database)
    try:
        images = db.read_all_images()
        names = {im.image_id: im.name for im in images}
        keypoints = {im.name: db.num_keypoints_for_image(im.image_id) for im in images}
        best = dict.fromkeys(keypoints, 0)
        pair_ids, geometries = db.read_two_view_geometries()
        for pair_id, geometry in zip(pair_ids, geometries, strict=True):
            inliers = len(geometry.inlier_matches)
            for image_id in pycolmap.pair_id_to_image_pair(pair_id):
                name = names.get(image_id)
                if name is not None:
                    best[name] = max(best[name], inliers)
        return keypoints, best
    finally:
        db.close()


def unregistered_reasons(
    capture_root: Path,
    entries: Sequence[ImageEntry],
    registered: set[str],
    database: Path | None,
    side_models: Sequence[set[str]],
    *,
    min_keypoints: int,
    min_inliers: int,
    blur_ratio: float,
) -> dict[str, str]:
    """{frame id: reason} for every entry whose name is not in ``registered``.

    ``side_models`` are the image names of the mapper's smaller models (not kept).
    """
    missing = [e for e in entries if e.name not in registered]
    if not missing:
        return {}
    sharp = {e.name: sharpness(capture_root / e.name) for e in entries}
    values = [v for v in sharp.values() if v is not None]
    median = float(np.median(values)) if values else 0.0
    keypoints, best_inliers = _database_counts(database) if database is not None else ({}, {})
    reasons = {}
    for e in missing:
        s = sharp[e.name]
        n_kp = keypoints.get(e.name)
        n_in = best_inliers.get(e.name, 0)
        side = next((m for m in side_models if e.name in m), None)
        if s is None:
            reason = "unreadable image: could not decode the file"
        elif median > 0 and s < blur_ratio * median:
            reason = f"blurry: sharpness {s:.0f} is far below the capture's median {median:.0f}"
        elif n_kp is None:
            reason = "no features: the image was not read by feature extraction"
        elif n_kp < min_keypoints:
            reason = f"too few features: {n_kp} keypoints (< {min_keypoints})"
        elif n_in < min_inliers:
            reason = f"too few matches: best image pair has {n_in} inlier matches (< {min_inliers})"
        elif side is not None:
            reason = f"not connected to the main model: it is in a separate model of {len(side)} frames"
        else:
            reason = (f"not connected to the main model: matched ({n_in} inliers at best) but its pose "
                      "could not be estimated")
        reasons[e.frame_id] = reason
    return reasons
