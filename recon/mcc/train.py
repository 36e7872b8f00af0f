"""Training MCC: views of generated objects (or of a user's capture), queries with exact truth.

A training view is a ``PreparedView`` plus a way to answer "is this point inside, and what
colour is the surface near it" in the view's normalised camera frame (``Truth``). Each step
draws a batch of views from a pool that is refreshed as training runs, samples queries (a share
uniform over the query cube, the rest near the surface), and minimises binary cross-entropy on
occupancy plus cross-entropy on the colour bins of queries near the surface.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from core.progress import CancelToken, Progress
from recon.mcc.data import Camera, GeneratedObject, random_camera, random_object, render, surface_points
from recon.mcc.frame import PreparedView, backproject, prepare_view
from recon.mcc.model import MCC, MCCConfig, split_prediction

NEAR_SURFACE = 0.1  # normalised units: queries this close to the surface get a colour loss
COLOUR_WEIGHT = 0.5


@dataclass
class TrainingView:
    view: PreparedView
    # Normalised points [N, 3] -> (signed distance in normalised units [N], colour [N, 3]).
    truth: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    surface: torch.Tensor  # [M, 3] normalised points on the whole surface


def small_config() -> MCCConfig:
    """The shipped default model's sizes: small enough to train and run on a laptop CPU."""
    return MCCConfig(rgb_size=64, patch_size=8, embed_dim=64, depth=2, heads=4, xyz_size=32, window=4,
                     decoder_dim=64, decoder_depth=2, decoder_heads=4, colour_bins=32, occupancy="solid")


def generated_view(rng: np.random.Generator, config: MCCConfig, image_size: int = 128) -> TrainingView:
    """One random object seen from one random camera; the truth is the whole object."""
    while True:
        obj = random_object(rng)
        cam = random_camera(rng, obj, image_size)
        rgb, depth = render(obj, cam)
        if (depth > 0).sum() >= 64:
            return training_view(obj, cam, rgb, depth, config, rng)


def training_view(obj: GeneratedObject, cam: Camera, rgb: np.ndarray, depth: np.ndarray, config: MCCConfig,
                  rng: np.random.Generator) -> TrainingView:
    """A rendered view of ``obj`` prepared as the network sees it, with the object's exact truth."""
    points = backproject(depth, cam.fx, cam.fy, cam.cx, cam.cy)
    view = prepare_view(rgb, points, depth > 0, config.rgb_size, config.xyz_size)
    rot = torch.tensor(cam.c2w[:3, :3], dtype=torch.float32)
    origin = torch.tensor(cam.c2w[:3, 3], dtype=torch.float32)
    centre = torch.tensor(view.centre, dtype=torch.float32)
    scale = view.scale

    def truth(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        world = (q * scale + centre) @ rot.T + origin
        return obj.sdf(world) / scale, obj.colour(world)

    surface_world = surface_points(obj, 1024, rng)
    surface = ((surface_world - origin) @ rot - centre) / scale
    return TrainingView(view, truth, surface)


def sample_queries(tv: TrainingView, n: int, world_size: float, gen: torch.Generator,
                   uniform_share: float = 0.4) -> torch.Tensor:
    n_uniform = int(n * uniform_share)
    uniform = (torch.rand(n_uniform, 3, generator=gen) * 2 - 1) * world_size
    pick = torch.randint(0, len(tv.surface), (n - n_uniform,), generator=gen)
    sigma = torch.rand(n - n_uniform, 1, generator=gen) * 0.3 + 0.02
    near = tv.surface[pick] + torch.randn(n - n_uniform, 3, generator=gen) * sigma
    return torch.cat([uniform, near]).clamp(-world_size, world_size)


def batch_inputs(views: list[TrainingView], device: str) -> tuple[torch.Tensor, ...]:
    rgb = torch.from_numpy(np.stack([v.view.rgb for v in views])).to(device)
    xyz = torch.from_numpy(np.stack([v.view.xyz for v in views])).to(device)
    valid = torch.from_numpy(np.stack([v.view.valid for v in views])).to(device)
    return rgb, xyz, valid


def loss_on(model: MCC, views: list[TrainingView], queries: torch.Tensor,
            device: str) -> tuple[torch.Tensor, dict]:
    """queries [B, Q, 3]; the batch loss and its parts."""
    truths = [tv.truth(q) for tv, q in zip(views, queries, strict=True)]
    sdf = torch.stack([t[0] for t in truths]).to(device)
    colour = torch.stack([t[1] for t in truths]).to(device)
    occ_logit, colour_logits = split_prediction(model(*batch_inputs(views, device), queries.to(device)),
                                                model.config.colour_bins)
    target = (sdf < 0).float() if model.config.occupancy == "solid" else (sdf.abs() < NEAR_SURFACE).float()
    occ_loss = F.binary_cross_entropy_with_logits(occ_logit, target)
    near = sdf.abs() < NEAR_SURFACE
    bins = model.config.colour_bins
    if near.any():
        colour_bin = (colour[near] * (bins - 1)).round().long().clamp(0, bins - 1)
        colour_loss = F.cross_entropy(colour_logits[near].reshape(-1, bins), colour_bin.reshape(-1))
    else:
        colour_loss = occ_loss.new_zeros(())
    return occ_loss + COLOUR_WEIGHT * colour_loss, {"occupancy": float(occ_loss.detach()),
                                                          "colour": float(colour_loss.detach())}


@dataclass
class TrainSettings:
    steps: int = 1000
    batch: int = 8
    queries: int = 512
    lr: float = 1e-3
    pool: int = 128  # views kept in memory
    refresh_every: int = 2  # steps between replacing one pooled view with a new one
    max_seconds: float | None = None  # stop early (and say so) after this long
    seed: int = 0
    device: str = "cpu"
    log_every: int = 50


@dataclass
class TrainResult:
    steps_done: int
    seconds: float
    stopped_by_time: bool
    history: list[dict] = field(default_factory=list)


def train(model: MCC, settings: TrainSettings, make_view: Callable[[np.random.Generator], TrainingView],
          progress: Progress | None = None, cancel: CancelToken | None = None,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``model`` in place on views from ``make_view``."""
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    model.to(settings.device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.lr,
                            weight_decay=0.01)
    pool = [make_view(rng) for _ in range(settings.pool)]
    started = time.monotonic()

    def done_fraction(step: int) -> float:  # of the steps, or of the time when that runs out first
        by_time = 0.0 if settings.max_seconds is None else (time.monotonic() - started) / settings.max_seconds
        return min(1.0, max(step / settings.steps, by_time))

    def set_lr(step: int) -> None:  # 5 % linear warm-up, then cosine down to 5 %
        f = done_fraction(step)
        factor = f / 0.05 if f < 0.05 else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (f - 0.05) / 0.95))
        for group in opt.param_groups:
            group["lr"] = settings.lr * max(factor, 1e-3)

    history: list[dict] = []
    step = 0
    stopped_by_time = False
    running: dict[str, float] = {}
    for step in range(settings.steps):
        if cancel is not None:
            cancel.check()
        if settings.max_seconds is not None and time.monotonic() - started > settings.max_seconds:
            stopped_by_time = True
            break
        if settings.pool > settings.batch and step % settings.refresh_every == settings.refresh_every - 1:
            pool[int(rng.integers(len(pool)))] = make_view(rng)
        set_lr(step)
        picks = rng.choice(len(pool), size=min(settings.batch, len(pool)), replace=False)
        views = [pool[i] for i in picks]
        queries = torch.stack([sample_queries(v, settings.queries, model.config.world_size, gen)
                               for v in views])
        loss, parts = loss_on(model, views, queries, settings.device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        for k, v in {"loss": float(loss.detach()), **parts}.items():
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            entry = {"step": step + 1, "seconds": round(time.monotonic() - started, 1),
                     **{k: round(v, 4) for k, v in running.items()}}
            history.append(entry)
            if log is not None:
                log(str(entry))
        if progress is not None:
            progress.update((step + 1) / settings.steps, f"step {step + 1}/{settings.steps}")
    else:
        step = settings.steps
    model.eval()
    return TrainResult(step, time.monotonic() - started, stopped_by_time, history)
