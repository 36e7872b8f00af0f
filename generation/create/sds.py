"""Score distillation (DreamFusion / Magic3D style): Gaussian splats, started from a shape (the Shap-E
mesh's surface, or a sphere), rendered by recon.splat's own rasterizer from random cameras around
the object, are moved along the Stable Diffusion UNet's score: for a render x, its VAE latent z, a
random timestep t and noise e, the gradient on z is w(t) (e_hat(z_t; prompt, guidance) - e), with
the UNet itself not differentiated. The refined splats' rendered depth is fused back into a mesh
(recon.splat.mesh), so the result goes down the same mesh path as Shap-E's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.progress import CancelToken, Progress
from recon.mesh.types import Mesh
from recon.splat.gaussians import init_params
from recon.splat.raster import rasterize

T_RANGE = (0.02, 0.98)  # fraction of the training timesteps sampled (DreamFusion)


@dataclass(frozen=True)
class SdsSettings:
    steps: int = 500
    size: int = 512  # render side in pixels (the latent is size / the VAE's factor)
    guidance: float = 100.0  # DreamFusion's classifier-free guidance for SDS
    lr: float = 0.01
    points: int = 4096
    seed: int = 0
    elevation_deg: tuple[float, float] = (-10.0, 40.0)
    fov_deg: float = 45.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    losses: list[float] = field(default_factory=list, compare=False)


def surface_points(mesh: Mesh | None, count: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``count`` points (and colours) on ``mesh``'s surface by area, or on a unit sphere without one."""
    rng = np.random.default_rng(seed)
    if mesh is None or mesh.n_faces == 0:
        p = rng.normal(size=(count, 3))
        return 0.5 * p / np.linalg.norm(p, axis=1, keepdims=True), None
    tri = mesh.vertices[mesh.faces]  # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(tri), size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    bary = np.stack([1 - u - v, u, v], axis=1)  # (count, 3)
    points = np.einsum("nk,nkc->nc", bary, tri[face])
    colours = None
    if mesh.vertex_colors is not None:
        colours = np.einsum("nk,nkc->nc", bary, mesh.vertex_colors[mesh.faces[face]])
    return points, colours


def _orbit_point(centre: np.ndarray, distance: float, az: float, el: float) -> np.ndarray:
    direction = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
    return centre + distance * direction


def random_camera(centre: np.ndarray, radius: float, settings: SdsSettings, gen: np.random.Generator
                  ) -> tuple[Tensor, Tensor]:
    """(world-to-camera [4, 4], K [3, 3]) of a camera on a sphere around ``centre``, framing the object."""
    from generation.video.paths import look_at

    az = gen.uniform(0, 2 * math.pi)
    el = math.radians(gen.uniform(*settings.elevation_deg))
    distance = radius / math.sin(math.radians(settings.fov_deg) / 2) * 1.1
    c2w = look_at(_orbit_point(centre, distance, az, el), centre)
    f = 0.5 * settings.size / math.tan(math.radians(settings.fov_deg) / 2)
    K = torch.tensor([[f, 0, settings.size / 2], [0, f, settings.size / 2], [0, 0, 1]], dtype=torch.float32)
    return torch.from_numpy(np.linalg.inv(c2w).astype(np.float32)), K


class ScoreDistiller:
    """The frozen parts of a Stable Diffusion pipeline, asked for the score of renders under a prompt."""

    def __init__(self, pipe: Any, prompt: str, guidance: float, device: str = "cpu") -> None:
        self.unet, self.vae, self.device = pipe.unet, pipe.vae, device
        self.scheduler = pipe.scheduler
        self.guidance = float(guidance)
        for module in (self.unet, self.vae, pipe.text_encoder):
            module.requires_grad_(False)
        with torch.no_grad():
            tokens = pipe.tokenizer(["", prompt], padding="max_length", truncation=True, return_tensors="pt",
                                    max_length=pipe.tokenizer.model_max_length)
            ids = tokens.input_ids.to(device)
            self.embeddings = pipe.text_encoder(ids)[0]  # [2, L, D]: unconditional, prompt
        self.alphas = self.scheduler.alphas_cumprod.to(device)
        n = self.scheduler.config.num_train_timesteps
        self.t_lo, self.t_hi = int(T_RANGE[0] * n), int(T_RANGE[1] * n)

    def encode(self, rgb: Tensor) -> Tensor:
        """[H, W, 3] 0..1 -> [1, C, h, w] scaled latent (differentiable)."""
        x = rgb.permute(2, 0, 1)[None].to(self.device, self.vae.dtype) * 2 - 1
        return self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor

    def residual(self, latent: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """w(t) (e_hat - e): the guided noise prediction's error on ``latent`` noised to ``t``."""
        with torch.no_grad():
            noisy = self.scheduler.add_noise(latent.detach(), noise, t)
            eps = self.unet(torch.cat([noisy] * 2), torch.cat([t] * 2), encoder_hidden_states=self.embeddings
                            ).sample
            uncond, cond = eps.chunk(2)
            guided = uncond + self.guidance * (cond - uncond)
            return (1 - self.alphas[t]).view(-1, 1, 1, 1) * (guided - noise)

    def sds_loss(self, latent: Tensor, gen: torch.Generator) -> Tensor:
        """A loss whose gradient on ``latent`` is the SDS gradient; its value is 0.5 |residual|^2."""
        t = torch.randint(self.t_lo, self.t_hi + 1, (1,), generator=gen).to(self.device)
        noise = torch.randn(latent.shape, generator=gen).to(self.device, latent.dtype)
        grad = torch.nan_to_num(self.residual(latent, t, noise))
        target = (latent - grad).detach()
        return 0.5 * ((latent - target) ** 2).sum()


def optimise_splats(params: dict[str, Tensor], distiller: ScoreDistiller, settings: SdsSettings,
                    centre: np.ndarray, radius: float, progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> list[float]:
    """Run ``settings.steps`` SDS steps on ``params`` in place; returns the loss of each step."""
    names = ("means", "sh_dc", "opacity_logits", "log_scales")
    for name in names:
        params[name].requires_grad_(True)
    rates = {"means": settings.lr * radius * 0.1, "sh_dc": settings.lr * 5, "opacity_logits": settings.lr * 5,
             "log_scales": settings.lr}
    optimiser = torch.optim.Adam([{"params": [params[n]], "lr": rates[n]} for n in names])
    gen = torch.Generator().manual_seed(settings.seed)
    cameras = np.random.default_rng(settings.seed)
    background = torch.tensor(settings.background, dtype=torch.float32)
    losses = []
    for step in range(settings.steps):
        if cancel is not None:
            cancel.check()
        viewmat, K = random_camera(centre, radius, settings, cameras)
        render = rasterize(params, viewmat, K, settings.size, settings.size, background)
        loss = distiller.sds_loss(distiller.encode(render.rgb), gen)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress.update((step + 1) / settings.steps, f"score distillation {step + 1}/{settings.steps}")
            if step % 10 == 0:
                progress.metric(step, sds_loss=losses[-1])
    for name in names:
        params[name].requires_grad_(False)
    return losses


MESH_VIEWS = 16
VOXELS_PER_RADIUS = 48


def splats_to_mesh(params: dict[str, Tensor], settings: SdsSettings, centre: np.ndarray, radius: float,
                   progress: Progress, cancel: CancelToken) -> Mesh:
    """Fuse the splats' rendered depth and colour from views all around into a vertex-coloured mesh."""
    from core.capture import Camera
    from generation.video.paths import look_at
    from recon.splat.mesh import fuse_rendered_depth
    from recon.splat.views import TrainView

    size = settings.size
    f = 0.5 * size / math.tan(math.radians(settings.fov_deg) / 2)
    camera = Camera(size, size, f, f, size / 2, size / 2)
    distance = radius / math.sin(math.radians(settings.fov_deg) / 2) * 1.1
    views = []
    for i in range(MESH_VIEWS):
        az, el = 2 * math.pi * i / MESH_VIEWS, math.radians(35.0 if i % 2 else -15.0)
        c2w = look_at(_orbit_point(centre, distance, az, el), centre)
        views.append(TrainView(f"view{i}", np.zeros((size, size, 3), np.float32), camera, c2w))
    background = torch.tensor(settings.background, dtype=torch.float32)
    fused = fuse_rendered_depth(params, background, views, rasterize, distance * VOXELS_PER_RADIUS / radius,
                                progress, cancel)
    colours = None if fused.colors is None else fused.colors.astype(np.float64) / 255.0
    return Mesh(fused.vertices.astype(np.float64), fused.faces.astype(np.int64), colours)


def refine_mesh(raw: Mesh | None, prompt: str, config: Any, registry: Any, *, device: str,
                progress: Progress, cancel: CancelToken) -> tuple[Mesh, dict[str, Any]]:
    """Score-distil splats started from ``raw`` (a sphere when None) against the registry's Stable
    Diffusion model under ``prompt``; the refined shape as a mesh, and what happened."""
    from core.errors import ConfigError
    from generation.models.loader import load_text_to_image_pipeline

    if not prompt:
        raise ConfigError("score distillation needs a prompt (it refines against text)",
                          "create.refine_steps")
    model = registry.resolve(config.refine_model, "sd15")
    dtype = "float16" if device.startswith("cuda") else "float32"
    pipe = load_text_to_image_pipeline(model, device=device, dtype=dtype, models_dir=registry.models_dir,
                                       allow_download=config.allow_download)
    on_gpu = device.startswith("cuda")
    # A CPU run is a check of the loop at a small size; the full size needs a GPU.
    size = 512 if on_gpu else 8 * pipe.vae_scale_factor * 2
    settings = SdsSettings(steps=config.refine_steps, size=size, points=4096 if on_gpu else 512,
                           guidance=100.0 if on_gpu else 7.5, seed=config.seed)
    points, colours = surface_points(raw, settings.points, settings.seed)
    centre = 0.5 * (points.min(0) + points.max(0))
    radius = float(np.linalg.norm(points - centre, axis=1).max())
    params = init_params(points, colours, sh_degree=0, init_opacity=0.5, seed=settings.seed)
    distiller = ScoreDistiller(pipe, prompt, settings.guidance, device)
    losses = optimise_splats(params, distiller, settings, centre, radius, progress.sub(0.0, 0.8), cancel)
    mesh = splats_to_mesh(params, settings, centre, radius, progress.sub(0.8, 1.0), cancel)
    window = max(1, len(losses) // 4)
    return mesh, {"model": model.name, "steps": len(losses), "size": size, "guidance": settings.guidance,
                  "loss_first": float(np.mean(losses[:window])),
                  "loss_last": float(np.mean(losses[-window:]))}
