"""Coverage for guided captures: which azimuth / elevation sectors around the object have views.

Poses are camera-to-world 4x4 in OpenCV camera axes (z forward) in a gravity-aligned world whose
+y is up (ARKit's world, which the live stream keeps). The object's centre is the point closest
to every camera's viewing ray (least squares), so a guided orbit needs no marked object.

Photos from the phone web page carry no pose, only the device orientation of each shot
(capture_server.orientation): then the ring comes from where each photo's camera looked, on
the assumption of an orbit that keeps the object in the middle of the picture.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from capture_server.errors import RequestError
from capture_server.live import JOURNAL, frames_from_journal
from capture_server.orientation import METADATA_KEY, Orientation, parse_orientation
from capture_server.uploads import UPLOADS_DIR, UploadInfo
from core.capture import CaptureFolder

AZIMUTH_BINS = 12  # 30 degrees each
ELEVATION_EDGES_DEG = (-90.0, -15.0, 15.0, 45.0, 90.0)  # below, level, above, top
WORLD_UP = np.array([0.0, 1.0, 0.0])


def orbit_centre(c2w: np.ndarray) -> np.ndarray | None:
    """The point nearest to all viewing rays; None when the rays are (nearly) parallel.

    c2w: (N, 4, 4) camera-to-world, OpenCV axes.
    """
    origins = c2w[:, :3, 3]  # (N, 3)
    dirs = c2w[:, :3, 2]  # (N, 3) camera z axes, unit length
    eye = np.eye(3)
    projectors = eye[None] - dirs[:, :, None] * dirs[:, None, :]  # (N, 3, 3)
    a = projectors.sum(axis=0)  # (3, 3)
    b = np.einsum("nij,nj->i", projectors, origins)  # (3,)
    if np.linalg.cond(a) > 1e6:
        return None
    return np.linalg.solve(a, b)


def binned_counts(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """(elevation bins, azimuth bins) counts of views at these directions (degrees)."""
    az_bin = np.minimum(((azimuth_deg % 360.0) / (360.0 / AZIMUTH_BINS)).astype(int), AZIMUTH_BINS - 1)
    el_bin = np.clip(np.searchsorted(ELEVATION_EDGES_DEG, elevation_deg, side="right") - 1,
                     0, len(ELEVATION_EDGES_DEG) - 2)
    counts = np.zeros((len(ELEVATION_EDGES_DEG) - 1, AZIMUTH_BINS), dtype=int)
    np.add.at(counts, (el_bin, az_bin), 1)
    return counts


def sector_counts(c2w: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(elevation bins, azimuth bins) counts of cameras around ``centre``."""
    offsets = c2w[:, :3, 3] - centre  # (N, 3)
    dist = np.linalg.norm(offsets, axis=1).clip(min=1e-9)  # (N,)
    elevation = np.degrees(np.arcsin(np.clip(offsets @ WORLD_UP / dist, -1, 1)))  # (N,)
    azimuth = np.degrees(np.arctan2(offsets[:, 0], offsets[:, 2])) % 360.0  # (N,)
    return binned_counts(azimuth, elevation)


def photo_orientations(capture: CaptureFolder) -> list[Orientation]:
    """The orientations of the finished photo uploads that carry one, in upload order."""
    folder = capture.root / UPLOADS_DIR
    uploads = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            info = UploadInfo.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # an upload state being replaced or damaged: the upload itself reports it
        text = info.metadata.get(METADATA_KEY) if isinstance(info.metadata, dict) else None
        if info.state == "complete" and info.kind == "image" and isinstance(text, str):
            uploads.append(info)
    out = []
    for info in sorted(uploads, key=lambda u: (u.created, u.id)):
        try:
            out.append(parse_orientation(info.metadata[METADATA_KEY]))
        except RequestError:
            continue  # checked when the upload was created; a state edited since is not trusted
    return out


def orientation_coverage(orientations: list[Orientation]) -> dict[str, Any]:
    """The ring from each photo's direction around the object (no centre or radius: no positions)."""
    azimuth = np.array([o.view_azimuth_deg() for o in orientations])  # (N,)
    elevation = np.array([o.view_elevation_deg() for o in orientations])  # (N,)
    counts = binned_counts(azimuth, elevation)
    return {
        "available": True, "source": "orientation", "views": len(orientations),
        "counts": counts.tolist(),  # rows: elevation bands (low to high); columns: azimuth sectors
        "covered_fraction": round(float((counts > 0).mean()), 4),
        "azimuth_covered_fraction": round(float((counts.sum(axis=0) > 0).mean()), 4),
        "sector_deg": 360.0 / AZIMUTH_BINS,
    }


def capture_coverage(capture: CaptureFolder) -> dict[str, Any]:
    """Coverage from the device poses that arrived (live frames) or are in the manifest, else
    from the orientations the web page sent with its photos."""
    frames = frames_from_journal(capture) if (capture.raw_dir / JOURNAL).exists() else []
    if not frames:
        frames = list(capture.load().frames)
    poses = [f.pose for f in frames if f.pose is not None]
    grid = {"azimuth_bins": AZIMUTH_BINS, "elevation_edges_deg": list(ELEVATION_EDGES_DEG)}
    if len(poses) < 3:
        orientations = photo_orientations(capture)
        if orientations:
            return {**grid, **orientation_coverage(orientations)}
        return {**grid, "available": False, "views": len(poses),
                "reason": "needs device poses of at least 3 views, or photos sent with their orientation"}
    c2w = np.asarray(poses, dtype=float)  # (N, 4, 4)
    centre = orbit_centre(c2w)
    if centre is None:
        return {**grid, "available": False, "views": len(poses),
                "reason": "the views do not point at a common object"}
    counts = sector_counts(c2w, centre)
    return {
        **grid, "available": True, "source": "poses", "views": len(poses),
        "centre": [round(float(x), 4) for x in centre],
        "counts": counts.tolist(),  # rows: elevation bands (low to high); columns: azimuth sectors
        "covered_fraction": round(float((counts > 0).mean()), 4),
        "azimuth_covered_fraction": round(float((counts.sum(axis=0) > 0).mean()), 4),
        "radius_m": round(float(np.median(np.linalg.norm(c2w[:, :3, 3] - centre, axis=1))), 4),
        "sector_deg": 360.0 / AZIMUTH_BINS,
    }
