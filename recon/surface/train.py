"""Training the surface field: losses, coarse-to-fine schedule, progress, cancel, checkpoints, resume.

Each step's batch is drawn from a generator seeded by (seed, step), so a run resumed from a
checkpoint sees the same batches as one that never stopped. A checkpoint (checkpoint.pt in the
given folder, written atomically) holds the step count, the field, the optimiser and a
fingerprint of the settings and the normalisation; one with another fingerprint is not resumed.
On cancel the current state is saved before Cancelled propagates.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.errors import Cancelled
from core.fsio import atomic_write_bytes
from core.progress import CancelToken, Progress
from recon.surface.field import INIT_LEVELS, SurfaceField, tcnn_available
from recon.surface.presets import SurfacePreset
from recon.surface.render import render_rays
from recon.surface.scene_data import RaySet, hits_unit_sphere
from recon.training_preview import preview_every, write_preview

CHECKPOINT_FILE = "checkpoint.pt"
REPORTS = 50
DEPTH_POINTS_PER_RAY = 16  # progress events per run


@dataclass(frozen=True)
class LossWeights:
    eikonal: float = 0.1
    curvature: float = 5e-4
    depth_sdf: float = 1.0  # |SDF| at the surface points the depth maps saw
    depth_render: float = 0.1  # rendered distance against the depth map's
    mask: float = 0.1


@dataclass(frozen=True)
class TrainSettings:
    preset: SurfacePreset
    steps: int
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 250
    learning_rate: float = 1e-2
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class TrainResult:
    field: SurfaceField
    steps_done: int
    resumed_from: int  # the step the run continued from (0 = a fresh start)
    history: list[dict[str, float]]  # step, loss, psnr at each report


def _fingerprint(settings: TrainSettings, rays: RaySet) -> dict[str, Any]:
    kept = {k: v for k, v in asdict(settings).items() if k not in ("checkpoint_every", "device")}
    return {"settings": kept,
            "normalisation": asdict(rays.normalisation), "rays": len(rays)}


def build_field(preset: SurfacePreset, device: str) -> SurfaceField:
    use_tcnn = device.startswith("cuda") and tcnn_available()
    return SurfaceField(preset.levels, preset.max_resolution, preset.log2_table_size, use_tcnn).to(device)


def _optimizer(model: SurfaceField, lr: float) -> torch.optim.Optimizer:
    grid = list(model.encoding.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoding.")]
    return torch.optim.Adam([{"params": grid, "lr": lr}, {"params": rest, "lr": lr * 0.5}], betas=(0.9, 0.99),
                            eps=1e-15)


def _learning_rate_factor(step: int, steps: int) -> float:
    warmup = max(1, steps // 50)
    if step < warmup:
        return (step + 1) / warmup
    return 0.3 ** ((step - warmup) / max(1, steps - warmup))  # exponential decay to 30 %


def _active_levels(step: int, steps: int, levels: int) -> int:
    if levels <= INIT_LEVELS:
        return levels
    per_level = max(1, int(0.5 * steps / (levels - INIT_LEVELS)))  # all levels active at half-way
    return min(levels, INIT_LEVELS + step // per_level)


def save_checkpoint(path: Path, step: int, model: SurfaceField, optimizer: torch.optim.Optimizer,
                    fingerprint: dict[str, Any], background: torch.Tensor) -> None:
    buffer = io.BytesIO()
    torch.save({"step": step, "field": model.state_dict(), "optimizer": optimizer.state_dict(),
                "background": background.detach().cpu(), "fingerprint": fingerprint}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_checkpoint(path: Path, device: str, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location=device, weights_only=True)
    return state if state.get("fingerprint") == fingerprint else None


class _Losses:
    def __init__(self, model: SurfaceField, rays: RaySet, settings: TrainSettings) -> None:
        self.model, self.rays, self.settings = model, rays, settings
        self.w = settings.weights
        self.first_step_size = 2.0 / model.resolutions[min(INIT_LEVELS, model.levels) - 1]

    def __call__(self, idx: torch.Tensor, step: int, generator: torch.Generator,
                 background: torch.Tensor) -> tuple[torch.Tensor, float]:
        model, rays, p, dev = self.model, self.rays, self.settings.preset, self.settings.device
        origins, dirs, target = rays.origins[idx].to(dev), rays.directions[idx].to(dev), rays.rgb[idx].to(dev)
        mask = rays.mask[idx].to(dev) if rays.mask is not None else None
        out = render_rays(model, origins, dirs, p.coarse_samples, p.fine_samples, generator,
                          background=None if mask is not None else background)
        if mask is not None:  # colour only where the object is; its outline from the mask
            on = mask[:, None]
            mse = (((out.rgb - target) ** 2) * on).sum() / (3.0 * on.sum().clamp(min=1.0))
            rgb_loss = ((out.rgb - target).abs() * on).sum() / (3.0 * on.sum().clamp(min=1.0))
            opacity = out.opacity.clamp(1e-3, 1.0 - 1e-3)
            loss = rgb_loss + self.w.mask * torch.nn.functional.binary_cross_entropy(opacity, mask)
        else:
            mse = ((out.rgb - target) ** 2).mean()
            loss = (out.rgb - target).abs().mean()
        # Eikonal and curvature on half the rays' samples (one each) and a few points anywhere.
        n_reg = max(1, len(idx) // 2)
        pick = torch.randint(out.points.shape[1], (n_reg,), generator=generator).to(dev)
        near_surface = out.points[torch.arange(n_reg, device=dev), pick].detach()
        anywhere = (torch.rand(n_reg // 2, 3, generator=generator) * 2.0 - 1.0).to(dev)
        _, grad, lap = model.gradient_and_laplacian(torch.cat([near_surface, anywhere]))
        loss = loss + self.w.eikonal * ((grad.norm(dim=-1) - 1.0) ** 2).mean()
        ramp = min(1.0, step / max(1, self.settings.steps // 20)) * model.gradient_step / self.first_step_size
        loss = loss + self.w.curvature * ramp * lap.abs().mean()
        if rays.depth_t is not None:
            depth = rays.depth_t[idx].to(dev)
            seen = depth > 0
            if mask is not None:
                seen = seen & (mask > 0)
            if seen.any():
                loss = loss + self.w.depth_render * (out.depth[seen] - depth[seen]).abs().mean()
            # The SDF is zero where depth saw the surface: checked on more rays than are rendered (cheap).
            extra = torch.randint(len(rays), (DEPTH_POINTS_PER_RAY * len(idx),), generator=generator)
            extra = extra[rays.depth_t[extra] > 0]
            if rays.mask is not None:
                extra = extra[rays.mask[extra] > 0]
            if len(extra):
                t = rays.depth_t[extra, None].to(dev)
                surface = rays.origins[extra].to(dev) + rays.directions[extra].to(dev) * t
                loss = loss + self.w.depth_sdf * model.sdf(surface).abs().mean()
        psnr = -10.0 * math.log10(max(float(mse.detach()), 1e-10))
        return loss, psnr


@torch.no_grad()
def render_preview(model: SurfaceField, rays: RaySet, background: torch.Tensor, preset: SurfacePreset,
                   device: str) -> torch.Tensor | None:
    """(h, w, 3) render of the first photo's view (rays missing the unit sphere show the
    background), or None when the ray set has no preview rays."""
    if rays.preview is None:
        return None
    origins, dirs, h, w = rays.preview
    image = background.detach().to(device).expand(h * w, 3).clone()
    hit = hits_unit_sphere(origins, dirs)
    for chunk in torch.split(torch.nonzero(hit)[:, 0], 4096):
        out = render_rays(model, origins[chunk].to(device), dirs[chunk].to(device), preset.coarse_samples,
                          preset.fine_samples, torch.Generator().manual_seed(0), background=background)
        image[chunk.to(device)] = out.rgb.clamp(0.0, 1.0)
    return image.reshape(h, w, 3)


def train_surface(rays: RaySet, settings: TrainSettings, checkpoint_dir: Path, progress: Progress,
                  cancel: CancelToken, preview_dir: Path | None = None) -> TrainResult:
    """Train to ``settings.steps``, continuing from checkpoint_dir's checkpoint when it matches.

    Each report is a progress line and a metric event (loss, training-batch PSNR); with
    ``preview_dir`` (the run folder), about ten renders of the first photo's view are written."""
    torch.manual_seed(settings.seed)
    dev = settings.device
    model = build_field(settings.preset, dev)
    background = torch.nn.Parameter(torch.full((3,), 0.5, device=dev))
    optimizer = _optimizer(model, settings.learning_rate)
    optimizer.add_param_group({"params": [background], "lr": settings.learning_rate * 0.5})
    fingerprint = _fingerprint(settings, rays)
    checkpoint = Path(checkpoint_dir) / CHECKPOINT_FILE
    start = 0
    state = _load_checkpoint(checkpoint, dev, fingerprint)
    if state is not None:
        model.load_state_dict(state["field"])
        optimizer.load_state_dict(state["optimizer"])
        with torch.no_grad():
            background.copy_(state["background"].to(dev))
        start = int(state["step"])
        progress.log(f"resuming the surface from step {start} of {settings.steps}")
    losses = _Losses(model, rays, settings)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    history: list[dict[str, float]] = []
    report_every = max(1, settings.steps // REPORTS)
    every_preview = preview_every(settings.steps)
    step = start
    try:
        for step in range(start, settings.steps):
            cancel.check()
            model.set_active_levels(_active_levels(step, settings.steps, model.levels))
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * _learning_rate_factor(step, settings.steps)
            generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
            idx = torch.randint(len(rays), (settings.preset.rays_per_batch,), generator=generator)
            loss, psnr = losses(idx, step, generator, background)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done = step + 1
            if done % report_every == 0 or done == settings.steps:
                history.append({"step": done, "loss": float(loss.detach()), "psnr": psnr})
                message = f"step {done}/{settings.steps} loss {float(loss.detach()):.4f} PSNR {psnr:.2f} dB"
                progress.update(done / settings.steps, message)
                progress.metric(done, {"loss": float(loss.detach()), "psnr": psnr})
            if preview_dir is not None and (done % every_preview == 0 or done == settings.steps):
                image = render_preview(model, rays, background, settings.preset, dev)
                if image is not None:
                    write_preview(preview_dir, "surface", done, image.cpu().numpy(), progress)
            if done % settings.checkpoint_every == 0 and done < settings.steps:
                save_checkpoint(checkpoint, done, model, optimizer, fingerprint, background)
    except Cancelled:
        save_checkpoint(checkpoint, step, model, optimizer, fingerprint, background)
        progress.log(f"cancelled at step {step}; the checkpoint resumes from there")
        raise
    model.set_active_levels(model.levels)
    save_checkpoint(checkpoint, settings.steps, model, optimizer, fingerprint, background)
    return TrainResult(model, settings.steps, start, history)
