"""The training loop: Adam with per-parameter learning rates, L1 (+ SSIM) loss, densification
by view-space gradient and pruning by opacity, held-out PSNR, checkpoints and resume.

A checkpoint (params + optimizer state + densification statistics + step) is written every
``checkpoint_every`` steps and when cancelled, to ``checkpoint_dir``; ``resume_from`` continues
from one, so only the remaining steps run and the optimizer picks up where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.errors import Cancelled
from core.fsio import atomic_writer
from core.progress import CancelToken, Progress
from recon.splat.densify import DensifyStats, densify_and_prune
from recon.splat.gaussians import PARAM_NAMES
from recon.splat.raster import Render
from recon.splat.views import TrainView
from recon.training_preview import preview_every, write_preview

CHECKPOINT_GLOB = "step-*.pt"
Renderer = Callable[[dict[str, Tensor], Tensor, Tensor, int, int, Tensor], Render]


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    max_splats: int = 3000
    lr_means: float = 1.6e-3  # times the scene extent; decays x0.01 over the run
    lr_log_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacity: float = 5e-2
    lr_sh_dc: float = 1e-2
    lr_sh_rest: float = 5e-4
    lr_background: float = 1e-2
    ssim_weight: float = 0.2  # loss = (1 - w) L1 + w (1 - SSIM)
    densify_from: int = 50
    densify_until_fraction: float = 0.6
    densify_every: int = 50
    grad_threshold: float = 2e-4  # mean view-space gradient (NDC units), as 3DGS
    prune_opacity: float = 0.005
    checkpoint_every: int = 100
    eval_every: int = 50
    seed: int = 0


@dataclass
class TrainResult:
    step: int  # steps done
    params: dict[str, Tensor]
    background: Tensor
    heldout_psnr: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: int | None = None


def psnr(pred: Tensor, target: Tensor) -> float:
    mse = float(torch.mean((pred - target) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-10))


def _gauss_window(size: int = 7, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)  # [3, 1, k, k]


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM of two [H, W, 3] images in 0..1 (Gaussian window 7, sigma 1.5)."""
    win = _gauss_window().to(pred)
    x, y = pred.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None]  # [1, 3, H, W]
    pad = win.shape[-1] // 2

    def blur(t: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(t, win, padding=pad, groups=3)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


class Trainer:
    def __init__(self, params: dict[str, Tensor], background: Tensor, views: list[TrainView],
                 config: TrainConfig, render: Renderer, extent: float,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.config = config
        self.render = render
        self.extent = extent
        self.views = views
        self.targets = [self._t(v.rgb) for v in views]
        self.viewmats = [self._t(v.viewmat) for v in views]
        self.Ks = [self._t(v.K) for v in views]
        self.params = {k: params[k].detach().to(self.device).clone().requires_grad_(True)
                       for k in PARAM_NAMES}
        self.background = background.detach().to(self.device).clone().requires_grad_(True)
        self.optimizer = self._make_optimizer()
        self.stats = DensifyStats.empty(self.count, self.device)
        self.step = 0

    def _t(self, array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self.device)

    @property
    def count(self) -> int:
        return int(self.params["means"].shape[0])

    def _lrs(self) -> dict[str, float]:
        c = self.config
        return {"means": c.lr_means * self.extent, "log_scales": c.lr_log_scales, "quats": c.lr_quats,
                "opacity_logits": c.lr_opacity, "sh_dc": c.lr_sh_dc, "sh_rest": c.lr_sh_rest}

    def _make_optimizer(self) -> torch.optim.Adam:
        groups = [{"params": [self.params[k]], "lr": lr, "name": k} for k, lr in self._lrs().items()]
        groups.append({"params": [self.background], "lr": self.config.lr_background, "name": "background"})
        return torch.optim.Adam(groups, eps=1e-15)

    def _set_means_lr(self) -> None:
        t = min(1.0, self.step / max(1, self.config.steps))
        lr = self._lrs()["means"] * (0.01 ** t)  # log-linear decay, as 3DGS
        for group in self.optimizer.param_groups:
            if group["name"] == "means":
                group["lr"] = lr

    def train_step(self) -> float:
        c = self.config
        rng = np.random.default_rng(c.seed * 1_000_003 + self.step)
        i = int(rng.integers(len(self.views)))
        self._set_means_lr()
        h, w = self.targets[i].shape[:2]
        out = self.render(self.params, self.viewmats[i], self.Ks[i], w, h, self.background)
        target = self.targets[i]
        loss = (1 - c.ssim_weight) * (out.rgb - target).abs().mean()
        if c.ssim_weight > 0:
            loss = loss + c.ssim_weight * (1 - ssim(out.rgb, target))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if out.means2d.grad is not None:
            self.stats.add(out.means2d.grad, out.radii, w, h)
        self.optimizer.step()
        self.step += 1
        until = int(c.densify_until_fraction * c.steps)
        if c.densify_from <= self.step <= until and self.step % c.densify_every == 0:
            self.params, self.optimizer = densify_and_prune(
                self.params, self.optimizer, self.stats, c.grad_threshold, c.prune_opacity,
                c.max_splats, 0.01 * self.extent, seed=c.seed + self.step)
            self.stats = DensifyStats.empty(self.count, self.device)
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, views: list[TrainView]) -> float:
        values = []
        for v in views:
            h, w = v.rgb.shape[:2]
            out = self.render(self.params, self._t(v.viewmat), self._t(v.K), w, h, self.background)
            values.append(psnr(out.rgb.clamp(0, 1), self._t(v.rgb)))
        return float(np.mean(values)) if values else float("nan")

    # -- checkpoints -----------------------------------------------------------------------

    def save(self, folder: Path, extra: dict[str, Any]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step-{self.step:07d}.pt"
        state = {
            "step": self.step,
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "background": self.background.detach().cpu(),
            "optimizer": self.optimizer.state_dict(),
            "stats": self.stats.state(),
            "config": asdict(self.config),
            **extra,
        }
        with atomic_writer(path) as f:
            torch.save(state, f)
        for old in folder.glob(CHECKPOINT_GLOB):  # keep only the newest
            if old != path:
                old.unlink()
        return path

    def load(self, path: Path) -> dict[str, Any]:
        state = torch.load(path, map_location=self.device, weights_only=True)
        # Parameters and optimizer are rebuilt at the checkpoint's size (densification changed it).
        self.params = {k: state["params"][k].clone().requires_grad_(True) for k in PARAM_NAMES}
        self.background = state["background"].clone().requires_grad_(True)
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.stats = DensifyStats.from_state(state["stats"])
        self.step = int(state["step"])
        return state


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob(CHECKPOINT_GLOB)) if folder.is_dir() else []
    return found[-1] if found else None


def _preview(trainer: Trainer, view: TrainView, run_dir: Path, progress: Progress) -> None:
    with torch.no_grad():
        h, w = view.rgb.shape[:2]
        out = trainer.render(trainer.params, trainer._t(view.viewmat), trainer._t(view.K), w, h,
                             trainer.background)
    write_preview(run_dir, "splat", trainer.step, out.rgb.clamp(0, 1).cpu().numpy(), progress, view.name)


def train(trainer: Trainer, heldout: list[TrainView], checkpoint_dir: Path, progress: Progress,
          cancel: CancelToken, resume_from: Path | None = None,
          preview_dir: Path | None = None) -> TrainResult:
    """Run ``trainer`` to ``config.steps``; from ``resume_from`` (a checkpoint) when given.

    Each report is a progress line and a metric event (loss, held-out PSNR, splats, ETA); with
    ``preview_dir`` (the run folder), about ten renders of a view are written and reported."""
    c = trainer.config
    history: list[tuple[int, float]] = []
    resumed = None
    if resume_from is not None:
        state = trainer.load(resume_from)
        history = [(int(s), float(p)) for s, p in state.get("heldout_psnr", [])]
        resumed = trainer.step
        progress.log(f"resumed from step {trainer.step} ({trainer.count} splats)")
    if not history:
        history.append((trainer.step, trainer.evaluate(heldout)))
    started, start_step = time.monotonic(), trainer.step

    def checkpoint() -> None:
        trainer.save(checkpoint_dir, {"heldout_psnr": history})

    preview_view = (heldout or trainer.views)[0]
    every_preview = preview_every(c.steps)
    while trainer.step < c.steps:
        if cancel.cancelled:
            checkpoint()
            raise Cancelled(f"cancelled at step {trainer.step}; a checkpoint was kept to resume")
        loss = trainer.train_step()
        step = trainer.step
        if step % c.eval_every == 0 or step == c.steps:
            history.append((step, trainer.evaluate(heldout)))
        if step % max(1, c.steps // 100) == 0 or step == c.steps:
            held = history[-1][1]
            elapsed = time.monotonic() - started
            eta = elapsed / (step - start_step) * (c.steps - step)
            progress.update(step / c.steps, f"step {step}/{c.steps} loss {loss:.4f} "
                            f"held-out PSNR {held:.2f} dB, {trainer.count} splats, ETA {eta:.0f} s")
            values = {"loss": loss, "splats": float(trainer.count), "eta_s": eta}
            if math.isfinite(held):
                values["psnr"] = held
            progress.metric(step, values)
        if preview_dir is not None and (step % every_preview == 0 or step == c.steps):
            _preview(trainer, preview_view, preview_dir, progress)
        if step % c.checkpoint_every == 0 and step < c.steps:
            checkpoint()
    checkpoint()
    return TrainResult(trainer.step, {k: v.detach() for k, v in trainer.params.items()},
                       trainer.background.detach(), history, resumed)
