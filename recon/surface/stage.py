"""The ``surface`` stage: a neural SDF trained on the posed photos, meshed into mesh.ply.

Poses come from capture.json, or from a ``poses`` stage run's poses.json when the run is given
one; the mesh is in that frame and scale (metres for device poses), so the mesh stage takes it
unchanged. The stage is resumable: core keeps an interrupted run's folder, training checkpoints
go to ``train_checkpoints/`` in it, and the next attempt runs only the remaining steps.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError
from core.ports import POSED_IMAGES, RAW_MESH, Port
from core.resources import Resources
from core.stages import StageContext, StageSpec
from recon.fusion.ply import write_mesh_ply
from recon.surface.extract import extract_mesh
from recon.surface.presets import DETAILS, SurfacePreset, check_fits, describe_seconds, preset
from recon.surface.scene_data import load_rays, read_pose_run
from recon.surface.train import TrainSettings, train_surface

MESH_FILE = "mesh.ply"
CHECKPOINT_DIR = "train_checkpoints"  # not core's checkpoints/: one file of its own layout
DEVICES = ("auto", "cpu", "cuda")
_LIMITS = {"steps": (1, 1_000_000), "mesh_resolution": (16, 1024), "image_max_side": (16, 8192),
           "rays_per_batch": (16, 1 << 16), "coarse_samples": (8, 1024), "fine_samples": (0, 1024),
 "checkpoint_every": (1, 1_000_000), "seed": (0, 2**31 - 1)}


@dataclass(frozen=True)
class SurfaceStageConfig:
    """A detail preset (preview, medium, full) and optional overrides of its fields."""

    detail: str = "medium"
    steps: int | None = None
    rays_per_batch: int | None = None
    image_max_side: int | None = None
    mesh_resolution: int | None = None
    coarse_samples: int | None = None
    fine_samples: int | None = None
    device: str = "auto"  # auto (CUDA when there is one) | cpu | cuda
    use_depth: bool = True  # LiDAR depth as a loss when the capture has it
    use_masks: bool = True  # object masks as a loss when every photo has one
    seed: int = 0
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.detail not in DETAILS:
            raise ConfigError(f"must be one of {', '.join(DETAILS)}, got {self.detail!r}", "surface.detail")
        if self.device not in DEVICES:
            raise ConfigError(f"must be one of {', '.join(DEVICES)}, got {self.device!r}", "surface.device")
        for name, (lo, hi) in _LIMITS.items():
            value = getattr(self, name)
            if value is None and name not in ("checkpoint_every", "seed"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"expected a whole number in {lo}..{hi}, got {value!r}", f"surface.{name}")
        for name in ("use_depth", "use_masks"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"expected true or false, got {getattr(self, name)!r}", f"surface.{name}")

    def preset(self) -> SurfacePreset:
        names = ("steps", "rays_per_batch", "image_max_side", "mesh_resolution", "coarse_samples",
                 "fine_samples")
        overrides = {k: getattr(self, k) for k in names if getattr(self, k) is not None}
        return dataclasses.replace(preset(self.detail), **overrides)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("no CUDA GPU is available to torch on this machine", "surface.device")
    return device


def run(ctx: StageContext, config: SurfaceStageConfig) -> dict[str, Any]:
    device = resolve_device(config.device)
    p = config.preset()
    expected = check_fits(config.detail, device, config.steps)
    ctx.progress.log(f"surface: {p.steps} steps on {device}, expected about {describe_seconds(expected)}")
    poses = read_pose_run(ctx.inputs["poses"]) if "poses" in ctx.inputs else None
    ctx.progress.update(0.0, "reading the photos")
    rays = load_rays(ctx.capture, max_side=p.image_max_side, use_depth=config.use_depth,
                     use_masks=config.use_masks, poses=poses)
    ctx.cancel.check()
    settings = TrainSettings(preset=p, steps=p.steps, device=device, seed=config.seed,
                             checkpoint_every=config.checkpoint_every)
    started = time.monotonic()
    trained = train_surface(rays, settings, ctx.out_dir / CHECKPOINT_DIR, ctx.progress.sub(0.02, 0.9),
                            ctx.cancel, preview_dir=ctx.out_dir)
    train_seconds = time.monotonic() - started
    ctx.cancel.check()
    ctx.progress.update(0.9, "marching cubes")
    mesh = extract_mesh(trained.field, rays.normalisation, p.mesh_resolution, device)
    write_mesh_ply(ctx.out_dir / MESH_FILE, mesh.vertices, mesh.faces, mesh.normals, mesh.colors)
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    last = trained.history[-1] if trained.history else {}
    ctx.progress.log(f"surface: {len(mesh.vertices)} vertices, {len(mesh.faces)} triangles")
    return {
        "steps": trained.steps_done,
        "resumed_from_step": trained.resumed_from,
        "device": device,
        "frames": rays.frames,
        "rays": len(rays),
        "losses": {"depth": rays.depth_t is not None, "mask": rays.mask is not None},
        "final_loss": last.get("loss"),
        "final_psnr_db": last.get("psnr"),
        "history": trained.history,
        "train_seconds": round(train_seconds, 1),
        "vertices": len(mesh.vertices),
        "triangles": len(mesh.faces),
        "bounds_m": [[round(float(v), 4) for v in lo], [round(float(v), 4) for v in hi]],
        "extent_m": [round(float(v), 4) for v in hi - lo],
        "files": [MESH_FILE],
    }


STAGE = StageSpec(
    name="surface",
    config_cls=SurfaceStageConfig,
    run=run,
    resumable=True,
    reads=(Port("poses", POSED_IMAGES, optional=True, description="camera poses (else the device's)"),),
    writes=(RAW_MESH,),
    resources=Resources(gpu=True, gpu_memory_gb=8),
    description="neural SDF (hash grid, NeuS rendering, eikonal and curvature losses), marching cubes",
)
