"""The ``nerf`` stage's config and the settings it trains with, from the detail preset and the machine.

On CUDA: stock nerfacto sizes, rays per batch from free GPU memory. On a CPU: the small model
(nsconfig.SMALL_MODEL) and the preset's steps, refused when the expected time is over
MAX_CPU_MINUTES unless ``allow_long_cpu_run``: one message with the time and a preset that fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.errors import ConfigError
from recon.nerf.nsconfig import TrainSettings

DEVICES = ("auto", "cpu", "cuda", "mps")
CAMERA_OPTIMIZERS = ("off", "SO3xR3")
MAX_CPU_MINUTES = 30.0
# Seconds per ray per step of the small model on a CPU (measured on a 2-core machine shared with
# other work: 256 rays took about 0.35 s a step with one torch thread), rounded down.
CPU_SECONDS_PER_RAY = 7e-4


@dataclass(frozen=True)
class Preset:
    steps: int
    rays_per_batch: int
    max_image_side: int


PRESETS = {
    "preview": Preset(steps=1500, rays_per_batch=1024, max_image_side=320),
    "medium": Preset(steps=10000, rays_per_batch=4096, max_image_side=800),
    "full": Preset(steps=30000, rays_per_batch=4096, max_image_side=1600),
}


@dataclass(frozen=True)
class NerfConfig:
    detail: str = "medium"  # preview | medium | full (steps, rays per batch, image size)
    steps: int = 0  # 0: the preset's
    rays_per_batch: int = 0  # 0: the preset's (on CUDA, fewer when GPU memory is short)
    max_image_side: int = 0  # 0: the preset's; photos are downscaled to this longest side
    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda | mps
    cpu_threads: int = 0  # torch threads on a CPU; 0 = one per core
    allow_long_cpu_run: bool = False  # run on a CPU even when it takes longer than MAX_CPU_MINUTES
    camera_optimizer: str = "off"  # off | SO3xR3 (moves the cameras; the mesh uses the given ones)
    checkpoint_every: int = 500
    seed: int = 0
    mesh_max_views: int = 60  # training views rendered for the mesh (evenly spaced)
    mesh_voxels_per_distance: float = 200.0  # voxel = median camera distance / this
    mesh_min_accumulation: float = 0.5  # rays less opaque than this give no depth

    def __post_init__(self) -> None:
        if self.detail not in PRESETS:
            raise ConfigError(f"expected one of {', '.join(PRESETS)}, got {self.detail!r}", "nerf.detail")
        if self.device not in DEVICES:
            raise ConfigError(f"expected one of {', '.join(DEVICES)}, got {self.device!r}", "nerf.device")
        if self.camera_optimizer not in CAMERA_OPTIMIZERS:
            raise ConfigError(f"expected one of {', '.join(CAMERA_OPTIMIZERS)}, "
                              f"got {self.camera_optimizer!r}", "nerf.camera_optimizer")
        for name, low in (("steps", 0), ("rays_per_batch", 0), ("max_image_side", 0), ("cpu_threads", 0),
                          ("checkpoint_every", 1), ("mesh_max_views", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 10**9:
                raise ConfigError(f"expected a whole number >= {low}, got {value!r}", f"nerf.{name}")
        for name, low, high in (("mesh_voxels_per_distance", 1.0, 1e5), ("mesh_min_accumulation", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not low <= value <= high:
                raise ConfigError(f"expected a number in {low:g}..{high:g}, got {value!r}", f"nerf.{name}")
        if not isinstance(self.allow_long_cpu_run, bool):
            raise ConfigError("expected true or false", "nerf.allow_long_cpu_run")


def pick_device(requested: str) -> str:
    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ConfigError("CUDA was asked for but torch sees no CUDA GPU", "nerf.device")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def _gpu_rays(preset_rays: int) -> int:
    free, _ = torch.cuda.mem_get_info()
    gib = free / 2**30
    # nerfacto at 4096 rays peaks near 6 GiB with tcnn and more with the torch hash grid.
    fits = 4096 if gib >= 8 else 2048 if gib >= 4 else 1024
    return min(preset_rays, fits)


def cpu_minutes(steps: int, rays: int) -> float:
    """Expected minutes of a CPU run of the small model."""
    return steps * rays * CPU_SECONDS_PER_RAY / 60.0


def _fmt_minutes(minutes: float) -> str:
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{max(1, round(minutes))} min"


def expected(detail: str) -> str:
    """A line saying what a run at ``detail`` is expected to take on this machine; ConfigError
    (the time and the preset that fits) where a CPU run would be refused."""
    settings, side = resolve(NerfConfig(detail=detail))
    if settings.device == "cpu":
        minutes = cpu_minutes(settings.steps, settings.rays_per_batch)
        return (f"about {_fmt_minutes(minutes)} on this machine's CPU ({settings.steps} steps of "
                f"{settings.rays_per_batch} rays, photos at {side} px)")
    return (f"{settings.steps} steps of {settings.rays_per_batch} rays on the {settings.device} GPU, "
            f"photos at {side} px (GPU time is not estimated yet)")


def resolve(config: NerfConfig) -> tuple[TrainSettings, int]:
    """-> (train settings, max image side) for this machine; ConfigError for a CPU run too long."""
    preset = PRESETS[config.detail]
    device = pick_device(config.device)
    steps = config.steps or preset.steps
    rays = config.rays_per_batch or preset.rays_per_batch
    side = config.max_image_side or preset.max_image_side
    if device == "cuda" and not config.rays_per_batch:
        rays = _gpu_rays(rays)
    if device == "cpu" and not config.allow_long_cpu_run:
        minutes = cpu_minutes(steps, rays)
        if minutes > MAX_CPU_MINUTES:
            fits = [name for name, p in PRESETS.items()
                    if cpu_minutes(p.steps, p.rays_per_batch) <= MAX_CPU_MINUTES]
            hint = "use fewer steps"
            if fits:
                fit = PRESETS[fits[0]]
                fit_minutes = cpu_minutes(fit.steps, fit.rays_per_batch)
                hint = f"use --detail {fits[0]} (about {_fmt_minutes(fit_minutes)})"
            raise ConfigError(
                f"a NeRF at detail '{config.detail}' ({steps} steps of {rays} rays) would take about "
                f"{_fmt_minutes(minutes)} on this machine's CPU (no CUDA GPU found); {hint}, or a CUDA GPU "
                "(allow_long_cpu_run=true runs it anyway)", "nerf.detail")
    settings = TrainSettings(steps=steps, rays_per_batch=rays, device=device, seed=config.seed,
                             camera_optimizer=config.camera_optimizer,
                             checkpoint_every=config.checkpoint_every, cpu_threads=config.cpu_threads,
                             small_model=device != "cuda")
    return settings, side
