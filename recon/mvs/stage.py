"""The ``mvs`` stage: dense geometry from posed photos alone.

Two backends write the same mesh.ply and points.ply. ``plane_sweep`` (CPU): plane-sweep depth
maps per view (recon.mvs.dense), filtered for cross-view consistency, fused by the same TSDF as
LiDAR depth (recon.fusion). ``patch_match`` (NVIDIA GPU): COLMAP's PatchMatch stereo, fusion
and Poisson meshing (recon.mvs.patch_match). ``auto`` takes patch_match when pycolmap has CUDA
and a CUDA device is present, else plane_sweep; the result says which ran. Units are the
poses' units: metres for metric captures, the SfM model's own otherwise; the voxel size
follows the camera distance so it works in both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import open3d as o3d

from core.errors import ConfigError, ReconstructionError
from core.ports import POSED_IMAGES, RAW_MESH, Port
from core.stages import StageContext, StageSpec
from recon.fusion.ply import write_mesh_ply, write_points_ply
from recon.mvs.dense import DenseConfig, dense_depths
from recon.mvs.fuse import fuse_views
from recon.mvs.patch_match import (
    BACKENDS,
    PatchMatchConfig,
    choose_backend,
    patch_match_mesh,
    unavailable_reason,
)
from recon.mvs.views import make_view
from recon.posed import load_posed_frames, read_rgb_undistorted

MESH_FILE = "mesh.ply"
POINTS_FILE = "points.ply"


@dataclass(frozen=True)
class MVSConfig(DenseConfig):
    max_views: int = 60  # evenly spaced subset of the registered frames
    voxels_per_distance: float = 300.0  # voxel size = median camera distance / this
    min_weight: float = 2.0
    backend: str = "auto"  # auto | plane_sweep | patch_match (NVIDIA GPU)
    patch_match_max_image_size: int = 1600  # PatchMatch's resolution (max_image_size is plane_sweep's)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"expected one of {', '.join(BACKENDS)}, got {self.backend!r}", "mvs.backend")
        size = self.patch_match_max_image_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"expected a positive whole number, got {size!r}",
                              "mvs.patch_match_max_image_size")


def _sparse_points(poses_run: Any) -> np.ndarray | None:
    if poses_run is None:
        return None
    ply = poses_run / "sparse.ply"
    if not ply.is_file():
        return None
    pts = np.asarray(o3d.io.read_point_cloud(str(ply)).points)
    return pts if len(pts) else None


def run(ctx: StageContext, config: MVSConfig) -> dict[str, Any]:
    unavailable = unavailable_reason() if config.backend != "plane_sweep" else None
    backend = choose_backend(config.backend, unavailable)
    if config.backend == "auto":
        ctx.progress.log(f"dense backend: {backend}" + (f" ({unavailable})" if unavailable else ""))
    if backend == "patch_match":
        pm_config = PatchMatchConfig(max_image_size=config.patch_match_max_image_size,
                                     max_views=config.max_views)
        result = patch_match_mesh(ctx.inputs.get("poses"), ctx.capture, ctx.out_dir, ctx.progress,
                                  ctx.cancel, pm_config)
        return {"backend": backend, **result}
    return {"backend": backend, **_run_plane_sweep(ctx, config)}


def _run_plane_sweep(ctx: StageContext, config: MVSConfig) -> dict[str, Any]:
    poses_run = ctx.inputs.get("poses")
    frames = [f for f in load_posed_frames(ctx.capture, poses_run) if f.image is not None]
    if len(frames) < 3:
        raise ReconstructionError(f"dense stereo needs at least 3 posed photos, got {len(frames)}")
    if len(frames) > config.max_views:
        keep = np.linspace(0, len(frames) - 1, config.max_views).round().astype(int)
        frames = [frames[i] for i in sorted(set(keep))]
    progress = ctx.progress
    views = []
    for f in frames:
        ctx.cancel.check()
        rgb, cam = read_rgb_undistorted(f)
        views.append(make_view(f.frame_id, rgb, cam, f.c2w, config.max_image_size))
    progress.log(f"dense stereo on {len(views)} views at {views[0].gray.shape[1]}x{views[0].gray.shape[0]}")
    dense = DenseConfig(**{k: v for k, v in asdict(config).items() if k in DenseConfig.__dataclass_fields__})
    depths = dense_depths(views, _sparse_points(poses_run), dense, progress.sub(0.0, 0.85), ctx.cancel)

    fused = fuse_views(views, depths, config.voxels_per_distance, config.min_weight,
                       progress.sub(0.85, 0.97), ctx.cancel)
    tsdf = fused.tsdf
    mesh = tsdf.extract_mesh()
    if mesh.triangle_count == 0:
        raise ReconstructionError("dense stereo found no consistent surface (too little texture or overlap?)")
    write_mesh_ply(ctx.out_dir / MESH_FILE, mesh.vertices, mesh.faces, mesh.normals, mesh.colors)
    points = tsdf.extract_points()
    write_points_ply(ctx.out_dir / POINTS_FILE, points.points, points.normals, points.colors)
    samples = int(sum(int((d > 0).sum()) for d in depths))
    return {
        "views": len(views), "views_skipped": list(fused.skipped), "depth_samples": samples,
        "voxel_size": fused.voxel_size,
        "vertices": mesh.vertex_count, "triangles": mesh.triangle_count,
        "bounds": mesh.bounds().tolist() if mesh.bounds() is not None else None,
        "mesh": MESH_FILE,
    }


STAGE = StageSpec(
    name="mvs", config_cls=MVSConfig, run=run, requires=("poses",),
    reads=(Port("poses", POSED_IMAGES),), writes=(RAW_MESH,),
    description="dense mesh from photos and poses: CPU plane sweep + TSDF, or PatchMatch on an NVIDIA GPU",
)
