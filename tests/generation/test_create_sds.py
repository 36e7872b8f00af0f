"""Score distillation: our splats, rendered by recon.splat's rasterizer and encoded by a real (tiny)
Stable Diffusion VAE, move along the denoiser's score. The denoiser here is the exact optimum for a
known image distribution (all of its mass on one target latent): eps*(z_t, t) = (z_t - sqrt(a_t) z*) /
sqrt(1 - a_t), the noise prediction a perfectly trained UNet would make for it; a random tiny UNet
has no score to follow. So the SDS loss must fall and the renders must approach the target."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from generation.create.sds import ScoreDistiller, SdsSettings, optimise_splats, random_camera, surface_points
from recon.splat.gaussians import init_params
from recon.splat.raster import rasterize


class OptimalDenoiser(torch.nn.Module):
    """The noise prediction of the ideal denoiser for data that is always ``target`` (a latent)."""

    def __init__(self, target: torch.Tensor, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.target, self.alphas = target, alphas_cumprod

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states=None):  # noqa: ANN001, ANN201
        a = self.alphas[timestep].view(-1, 1, 1, 1)
        return SimpleNamespace(sample=(sample - a.sqrt() * self.target) / (1 - a).sqrt())


@pytest.fixture(scope="module")
def tiny_pipe(tiny_sd15):
    from diffusers import StableDiffusionPipeline

    base, _ = tiny_sd15
    return StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)


def _latent_distance(params, distiller, target, settings) -> float:  # noqa: ANN001
    """Mean squared distance of four fixed views' latents from the target latent."""
    cams = np.random.default_rng(99)
    with torch.no_grad():
        renders = [rasterize(params, *random_camera(np.zeros(3), 0.5, settings, cams), 32, 32,
                             torch.ones(3)).rgb for _ in range(4)]
        return float(np.mean([float((distiller.encode(r) - target).pow(2).mean()) for r in renders]))


def test_sds_loss_goes_down_and_renders_approach_what_the_denoiser_knows(tiny_pipe):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    try:
        settings = SdsSettings(steps=40, size=32, points=192, guidance=1.0, lr=0.05)
        target_rgb = torch.zeros(32, 32, 3)
        target_rgb[..., 0] = 0.9  # a red image
        first, last, dist_before, dist_after = [], [], [], []
        for seed in range(3):
            distiller = ScoreDistiller(tiny_pipe, "a red ball", settings.guidance)
            with torch.no_grad():
                target = distiller.encode(target_rgb)
            distiller.unet = OptimalDenoiser(target, distiller.alphas)
            points, _ = surface_points(None, settings.points, seed)
            params = init_params(points, None, 0, init_opacity=0.5, seed=seed)

            dist_before.append(_latent_distance(params, distiller, target, settings))
            losses = optimise_splats(params, distiller, SdsSettings(**{**settings.__dict__, "seed": seed,
                                                                       "losses": []}),
                                     np.zeros(3), 0.5)
            dist_after.append(_latent_distance(params, distiller, target, settings))
            first.append(np.mean(losses[:10]))
            last.append(np.mean(losses[-10:]))
    finally:
        torch.set_num_threads(threads)
    assert np.mean(last) < 0.7 * np.mean(first)
    assert all(a < 0.95 * b for a, b in zip(dist_after, dist_before, strict=True))
