"""The ``splat`` stage: 3D Gaussian splatting on posed photos, ending in the run folder's
splat.ply (standard splat PLY), splat.usda (OpenUSD ParticleField3DGaussianSplat) and mesh.ply
(TSDF of rendered depth, capture's world frame and units) for the shared mesh stage.

Resume: the stage is resumable (core.stages keeps an interrupted run's folder); training
checkpoints go to ``train_checkpoints/`` in the run folder, and a run that finds one there
continues from it (recon.splat.train.train's ``resume_from``) and runs only the remaining steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import ConfigError
from core.ports import POSED_IMAGES, RAW_MESH, SPLATS, Port
from core.resources import Resources
from core.stages import StageContext, StageSpec
from recon.fusion.ply import write_mesh_ply
from recon.splat.backend import DEVICES, pick_device, renderer_for
from recon.splat.export import write_splat_ply, write_splat_usd
from recon.splat.gaussians import init_params
from recon.splat.mesh import fuse_rendered_depth
from recon.splat.presets import human, preset, refuse_if_too_slow
from recon.splat.train import TrainConfig, Trainer, latest_checkpoint, train
from recon.splat.views import TrainView, depth_points, load_views, random_points, sparse_points

PLY_FILE, USD_FILE, MESH_FILE = "splat.ply", "splat.usda", "mesh.ply"
CHECKPOINTS = "train_checkpoints"  # not core's checkpoints/: its own layout


@dataclass(frozen=True)
class SplatConfig:
    detail: str = "preview"  # preview | medium | full: image size, splat cap, steps
    device: str = "auto"  # auto | cpu | cuda | mps
    steps: int = 0  # 0: the preset's
    max_side: int = 0  # longer image side in pixels; 0: the preset's
    max_splats: int = 0  # 0: the preset's
    seed_points: int = 1000  # Gaussians to start from (SfM, depth or random points)
    sh_degree: int = 1  # 0 or 1
    holdout_every: int = 8  # every n-th view is held out to measure PSNR (0: none)
    ssim_weight: float = 0.2
    checkpoint_every: int = 100
    voxels_per_distance: float = 150.0  # TSDF voxel = median rendered depth / this
    mesh_render_scale: float = 2.0  # depth for the mesh is rendered at this times the training size
    seed: int = 0

    def __post_init__(self) -> None:
        preset(self.detail)
        if self.device not in DEVICES:
            raise ConfigError(f"expected one of {', '.join(DEVICES)}, got {self.device!r}", "splat.device")
        for name in ("steps", "max_side", "max_splats", "holdout_every", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"expected a whole number >= 0, got {v!r}", f"splat.{name}")
        for name in ("seed_points", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"expected a positive whole number, got {v!r}", f"splat.{name}")
        if self.sh_degree not in (0, 1) or isinstance(self.sh_degree, bool):
            raise ConfigError(f"expected 0 or 1, got {self.sh_degree!r}", "splat.sh_degree")
        w = self.ssim_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
            raise ConfigError(f"expected a number in 0..1, got {w!r}", "splat.ssim_weight")
        s = self.mesh_render_scale
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.25 <= s <= 8.0:
            raise ConfigError(f"expected a number in 0.25..8, got {s!r}", "splat.mesh_render_scale")
        v = self.voxels_per_distance
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 10.0 <= v <= 5000.0:
            raise ConfigError(f"expected a number in 10..5000, got {v!r}", "splat.voxels_per_distance")


def split_views(views: list[TrainView], every: int) -> tuple[list[TrainView], list[TrainView]]:
    """(training, held-out): every ``every``-th view is held out, when enough remain to train on."""
    if every < 2 or len(views) < 2 * every:
        return views, []
    held = [v for i, v in enumerate(views) if i % every == every // 2]
    return [v for v in views if v not in held], held


def scene_extent(views: list[TrainView]) -> float:
    centers = np.array([v.c2w[:3, 3] for v in views])
    return 1.1 * float(np.linalg.norm(centers - centers.mean(axis=0), axis=1).max() or 1.0)


def initial_gaussians(ctx: StageContext, views: list[TrainView], config: SplatConfig) -> tuple[dict, str]:
    seeds = sparse_points(ctx.inputs.get("poses"))
    source = "SfM points"
    if seeds is None:
        seeds, source = depth_points(ctx.capture, views, config.seed_points, config.seed), "depth maps"
    if seeds is None:
        seeds, source = (random_points(views, config.seed_points, config.seed), None), "random points"
    points, colors = seeds
    if len(points) > config.seed_points:
        pick = np.random.default_rng(config.seed).choice(len(points), config.seed_points, replace=False)
        points, colors = points[pick], (colors[pick] if colors is not None else None)
    return init_params(points, colors, config.sh_degree, seed=config.seed), source


def run(ctx: StageContext, config: SplatConfig) -> dict[str, Any]:
    chosen = preset(config.detail)
    steps = config.steps or chosen.steps
    max_side = config.max_side or chosen.max_side
    max_splats = config.max_splats or chosen.max_splats
    device = pick_device(config.device)
    views = load_views(ctx.capture, ctx.inputs.get("poses"), max_side)
    aspect = views[0].camera.width / views[0].camera.height
    if device == "cpu":
        expected = refuse_if_too_slow(config.detail, type(chosen)(max_side, max_splats, steps), aspect)
        ctx.progress.log(f"training on the CPU, expected about {human(expected)}")
    render = renderer_for(device)
    training, heldout = split_views(views, config.holdout_every)
    params, source = initial_gaussians(ctx, views, config)
    size = f"{views[0].camera.width}x{views[0].camera.height}"
    ctx.progress.log(f"{len(params['means'])} Gaussians from {source}; {len(training)} training views, "
                     f"{len(heldout)} held out, {size} px, {device}")
    background = torch.tensor(np.mean([v.rgb.reshape(-1, 3).mean(axis=0) for v in training], axis=0))
    train_config = TrainConfig(steps=steps, max_splats=max_splats, ssim_weight=config.ssim_weight,
                               checkpoint_every=config.checkpoint_every, seed=config.seed)
    trainer = Trainer(params, background, training, train_config, render, scene_extent(views), device)
    checkpoints = ctx.out_dir / CHECKPOINTS
    result = train(trainer, heldout, checkpoints, ctx.progress.sub(0.0, 0.85), ctx.cancel,
                   resume_from=latest_checkpoint(checkpoints), preview_dir=ctx.out_dir)
    write_splat_ply(ctx.out_dir / PLY_FILE, result.params)
    write_splat_usd(ctx.out_dir / USD_FILE, result.params)
    # Gaussians are continuous: rendered finer than they were trained, their edges blur less.
    mesh_views = load_views(ctx.capture, ctx.inputs.get("poses"), round(max_side * config.mesh_render_scale))
    mesh = fuse_rendered_depth(result.params, result.background, mesh_views, render,
                               config.voxels_per_distance, ctx.progress.sub(0.85, 1.0), ctx.cancel)
    write_mesh_ply(ctx.out_dir / MESH_FILE, mesh.vertices, mesh.faces, mesh.normals, mesh.colors)
    return {
        "device": device, "steps": result.step, "splats": int(result.params["means"].shape[0]),
        "seeded_from": source, "image_size": [views[0].camera.width, views[0].camera.height],
        "heldout_psnr": [[s, round(p, 3)] for s, p in result.heldout_psnr],
        "resumed_from": result.resumed_from,
        "splat_ply": PLY_FILE, "splat_usd": USD_FILE, "mesh": MESH_FILE,
        "vertices": mesh.vertex_count, "triangles": mesh.triangle_count,
    }


STAGE = StageSpec(
    name="splat", config_cls=SplatConfig, run=run,
    resumable=True,
    reads=(Port("poses", POSED_IMAGES, optional=True,
                description="camera poses and SfM points (else the device's poses and depth)"),),
    writes=(SPLATS, RAW_MESH),
    resources=Resources(gpu=True, gpu_memory_gb=8),
    description="3D Gaussian splatting (gsplat on CUDA, plain torch on CPU/MPS): splat PLY, USD and a mesh",
)
