"""The ``nerf`` stage: posed photos -> nerfacto (nerfstudio as a library) -> mesh.ply in the
capture's world frame and units, which the mesh stage takes like fusion's or mvs's.

Writes into its run folder: data/ (the downscaled dataset nerfstudio reads), checkpoints/
(step-N/nerfstudio.ckpt), nerfstudio/ (nerfstudio's own run folder with
dataparser_transforms.json), mesh.ply and training.json.

Resume: the stage is resumable, so core keeps its run folder and ``ctx.checkpoints`` across a
cancel or a kill, and the next attempt runs only the remaining steps.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.checkpoints import CHECKPOINT_DIR, Checkpoints
from core.fsio import atomic_write_json
from core.ports import POSED_IMAGES, RADIANCE_FIELD, RAW_MESH, Port
from core.resources import Resources
from core.stages import StageContext, StageSpec
from recon.fusion.ply import write_mesh_ply
from recon.nerf.data import DATA_DIR, FRAMES_FILE, read_views, write_dataset
from recon.nerf.mesh import evenly, fuse_rendered_depth
from recon.nerf.model import TrainedNerf
from recon.nerf.settings import NerfConfig, resolve
from recon.nerf.training import train
from recon.posed import load_posed_frames

MESH_FILE = "mesh.ply"
TRAINING_FILE = "training.json"


def checkpoint_store(ctx: StageContext) -> Checkpoints:
    """core's checkpoints of this resumable run (a context made by hand may have none)."""
    return ctx.checkpoints if ctx.checkpoints is not None else Checkpoints(ctx.out_dir / CHECKPOINT_DIR)


def run(ctx: StageContext, config: NerfConfig) -> dict[str, Any]:
    settings, max_side = resolve(config)  # a CPU run that would take hours stops here
    progress = ctx.progress
    small = " (small model for the CPU)" if settings.small_model else ""
    progress.log(f"nerfacto on {settings.device}: {settings.steps} steps of {settings.rays_per_batch} rays, "
                 f"photos at most {max_side} px{small}")
    if (ctx.out_dir / DATA_DIR / FRAMES_FILE).is_file():  # a resumed run keeps the data it trained on
        views = read_views(ctx.out_dir)
    else:
        frames = load_posed_frames(ctx.capture, ctx.inputs.get("poses"))
        views = write_dataset(frames, ctx.out_dir, max_side)
    ctx.cancel.check()
    progress.update(0.02, f"{len(views)} photos at {views[0].camera.width}x{views[0].camera.height}")

    result = train(ctx.out_dir / DATA_DIR, ctx.out_dir, settings, checkpoint_store(ctx),
                   progress.sub(0.02, 0.9), ctx.cancel, preview_dir=ctx.out_dir)
    model = TrainedNerf(ctx.out_dir, settings, result.checkpoint, result.base_dir)
    mesh = fuse_rendered_depth(model, evenly(views, config.mesh_max_views), config.mesh_voxels_per_distance,
                               config.mesh_min_accumulation, progress.sub(0.9, 1.0), ctx.cancel)
    write_mesh_ply(ctx.out_dir / MESH_FILE, mesh.vertices, mesh.faces, mesh.normals, mesh.colors)
    training = {
        "device": settings.device, "steps": settings.steps, "rays_per_batch": settings.rays_per_batch,
        "small_model": settings.small_model, "first_step": result.first_step, "last_step": result.last_step,
        "steps_run": result.steps_run, "resumed_from": result.resumed_from,
        "train_psnr": result.psnr, "loss": result.loss,
        "checkpoint": result.checkpoint.relative_to(ctx.out_dir).as_posix()
        if result.checkpoint.is_relative_to(ctx.out_dir) else str(result.checkpoint),
    }
    atomic_write_json(ctx.out_dir / TRAINING_FILE, {"settings": asdict(settings), **training})
    bounds = mesh.bounds()
    return {
        **training, "views": len(views), "vertices": mesh.vertex_count, "triangles": mesh.triangle_count,
        "bounds": bounds.tolist() if bounds is not None else None, "mesh": MESH_FILE,
    }


# Core's resumable stages (ctx.checkpoints kept across attempts) where this core has them.
STAGE = StageSpec(
    name="nerf", config_cls=NerfConfig, run=run, resumable=True,
    reads=(Port("poses", POSED_IMAGES, optional=True, description="camera poses (else the device's)"),),
    writes=(RADIANCE_FIELD, RAW_MESH),
    resources=Resources(gpu=True, gpu_memory_gb=8),
    description="nerfacto (nerfstudio) on the posed photos; its rendered depth TSDF-fused into a mesh",
)
