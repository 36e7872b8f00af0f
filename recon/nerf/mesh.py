"""The NeRF's surface: depth rendered from the training views, fused by our TSDF (recon.fusion)
in the capture's world frame and units (the same volume LiDAR depth and dense stereo use)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import ReconstructionError
from core.progress import CancelToken, Progress
from recon.fusion.tsdf import FusedMesh, FusionConfig, TSDFFusion
from recon.nerf.data import TrainingView
from recon.nerf.model import TrainedNerf
from recon.posed import look_at_point as cameras_look_at


def look_at_point(views: Sequence[TrainingView]) -> np.ndarray:
    """The point closest, in least squares, to every camera's optical axis."""
    return cameras_look_at(v.c2w for v in views)


def evenly(views: Sequence[TrainingView], count: int) -> list[TrainingView]:
    if len(views) <= count:
        return list(views)
    keep = sorted(set(np.linspace(0, len(views) - 1, count).round().astype(int).tolist()))
    return [views[i] for i in keep]


def fuse_rendered_depth(model: TrainedNerf, views: Sequence[TrainingView], voxels_per_distance: float,
                        min_accumulation: float, progress: Progress, cancel: CancelToken) -> FusedMesh:
    """Render each view's depth and colour, keep opaque rays, TSDF-fuse; the mesh is in the
    capture's world frame. ReconstructionError when no surface comes out."""
    target = look_at_point(views)
    distance = float(np.median([np.linalg.norm(v.c2w[:3, 3] - target) for v in views]))
    voxel = distance / voxels_per_distance
    tsdf = TSDFFusion(FusionConfig(
        voxel_size_m=voxel, trunc_voxels=4.0, min_depth_m=distance * 0.05, max_depth_m=distance * 3.0,
        min_confidence=0, min_weight=2.0, refine_views=0, initial_blocks=16384))
    for i, view in enumerate(views):
        cancel.check()
        out = model.render(view.camera, view.c2w)
        depth = np.where((out.accumulation >= min_accumulation) & np.isfinite(out.depth), out.depth, 0.0)
        rgb = np.clip(np.rint(out.rgb * 255.0), 0, 255).astype(np.uint8)
        tsdf.add_frame(depth.astype(np.float32), view.camera, view.c2w, color=rgb, frame=view.name)
        progress.update((i + 1) / len(views), f"rendered and fused depth of {i + 1}/{len(views)} views")
    mesh = tsdf.extract_mesh()
    if mesh.triangle_count == 0:
        raise ReconstructionError("the NeRF's rendered depth gave no surface (too few steps to learn one?)")
    return mesh
