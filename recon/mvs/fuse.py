"""Plane-sweep depth maps fused into one TSDF, skipping views with too little depth to place."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.capture import Camera
from core.errors import ReconstructionError
from core.progress import CancelToken, Progress
from recon.fusion.tsdf import FusionConfig, TSDFFusion
from recon.mvs.views import View, look_at_point


@dataclass(frozen=True, eq=False)
class FusedViews:
    tsdf: TSDFFusion
    voxel_size: float  # in the poses' units
    skipped: tuple[str, ...]  # views whose depth was too sparse to fuse


def pinhole(K: np.ndarray, width: int, height: int) -> Camera:
    # View.K centres pixels at integers; the capture convention at +0.5.
    return Camera(width, height, float(K[0, 0]), float(K[1, 1]), float(K[0, 2]) + 0.5, float(K[1, 2]) + 0.5)


def fuse_views(views: list[View], depths: list[np.ndarray], voxels_per_distance: float, min_weight: float,
               progress: Progress, cancel: CancelToken) -> FusedViews:
    """TSDF-fuse each view's (H, W) depth (0 = unknown). The voxel follows the camera distance, so
    it works in metres and in an SfM model's own units. A view whose depth is too sparse for the
    volume is skipped with a warning naming it; ReconstructionError when no view is left."""
    target = look_at_point(views)
    dist = float(np.median([np.linalg.norm(v.center - target) for v in views]))
    voxel = dist / voxels_per_distance
    measured = [d[d > 0] for d in depths if (d > 0).any()]
    if not measured:
        raise ReconstructionError("dense stereo found no depth consistent across views (too little texture?)")
    near = min(float(m.min()) for m in measured) * 0.99
    far = max(float(m.max()) for m in measured) * 1.01
    tsdf = TSDFFusion(FusionConfig(voxel_size_m=voxel, trunc_voxels=4.0, min_depth_m=near,
                                   max_depth_m=far, min_confidence=0, min_weight=min_weight))
    skipped = []
    for i, (view, depth) in enumerate(zip(views, depths, strict=True)):
        cancel.check()
        h, w = depth.shape
        if tsdf.add_frame(depth, pinhole(view.K, w, h), view.c2w, color=view.rgb, frame=view.name) == 0:
            skipped.append(view.name)
            progress.warning(f"{view.name}: too little consistent depth to fuse; view skipped")
        progress.update((i + 1) / len(views), f"fused {view.name}")
    if tsdf.frame_count == 0:
        raise ReconstructionError("dense stereo found too little consistent depth in any view to fuse")
    return FusedViews(tsdf, voxel, tuple(skipped))
