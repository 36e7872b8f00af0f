"""The mesh from splats: render median depth (expected depth where the rasterizer has no
median, gsplat's) for every training view, keep pixels the
Gaussians cover (alpha >= 0.5), and fuse them with recon.fusion's TSDF in the capture's world
frame and units, so the shared mesh -> texture -> export path takes it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from core.errors import ReconstructionError
from core.progress import CancelToken, Progress
from recon.fusion.tsdf import FusedMesh, FusionConfig, TSDFFusion
from recon.splat.raster import Render
from recon.splat.views import TrainView

MIN_ALPHA = 0.5


@torch.no_grad()
def fuse_rendered_depth(params: dict[str, Tensor], background: Tensor, views: list[TrainView],
                        render: Callable[..., Render], voxels_per_distance: float,
                        progress: Progress, cancel: CancelToken) -> FusedMesh:
    rendered = []
    for i, view in enumerate(views):
        cancel.check()
        h, w = view.rgb.shape[:2]
        out = render(params, torch.from_numpy(view.viewmat), torch.from_numpy(view.K), w, h, background)
        depth = (out.median_depth if out.median_depth is not None else out.depth).cpu().numpy()
        depth = depth.astype(np.float32)
        depth[out.alpha.cpu().numpy() < MIN_ALPHA] = 0.0
        rgb = (out.rgb.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        rendered.append((view, depth, rgb))
        progress.update((i + 1) / (2 * len(views)), f"rendered depth {view.name}")
    measured = [d[d > 0] for _, d, _ in rendered if (d > 0).any()]
    if not measured:
        raise ReconstructionError("the splats cover no pixel of any view; nothing to mesh")
    near = min(float(m.min()) for m in measured) * 0.99
    far = max(float(m.max()) for m in measured) * 1.01
    dist = float(np.median(np.concatenate([np.median(m, keepdims=True) for m in measured])))
    voxel = dist / voxels_per_distance
    tsdf = TSDFFusion(FusionConfig(voxel_size_m=voxel, trunc_voxels=4.0, min_depth_m=max(near, 1e-4),
                                   max_depth_m=far, min_confidence=0, min_weight=2.0, refine_views=0))
    for i, (view, depth, rgb) in enumerate(rendered):
        cancel.check()
        tsdf.add_frame(depth, view.camera, view.c2w, color=rgb, frame=view.name)
        progress.update(0.5 + (i + 1) / (2 * len(rendered)), f"fused {view.name}")
    mesh = tsdf.extract_mesh()
    if mesh.triangle_count == 0:
        raise ReconstructionError("fusing the splats' rendered depth gave no surface")
    return mesh
