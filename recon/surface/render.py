"""NeuS volume rendering of colour from the SDF, with one round of hierarchical sampling.

Opacity between two samples follows NeuS's discrete form from the SDF at the section's ends,
alpha = max((Phi(s f_i) - Phi(s f_i+1)) / Phi(s f_i), 0) with Phi the logistic function, which
needs no gradient at the samples. A coarse pass without gradients at a fixed sharpness finds
where the surface is; fine samples are drawn there by inverse transform sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recon.surface.field import SurfaceField
from recon.surface.scene_data import sphere_near_far

COARSE_SHARPNESS = 64.0


@dataclass(frozen=True, eq=False)
class Rendered:
    rgb: torch.Tensor  # (R, 3)
    opacity: torch.Tensor  # (R,)
    depth: torch.Tensor  # (R,) expected distance along the ray, field units
    points: torch.Tensor  # (R, S, 3) the sample points (for regularisation)
    weights: torch.Tensor  # (R, S-1)


def _alpha(sdf: torch.Tensor, sharpness: torch.Tensor | float) -> torch.Tensor:
    """(R, S) SDF at sample ends -> (R, S-1) section opacities."""
    prev_cdf = torch.sigmoid(sdf[:, :-1] * sharpness)
    next_cdf = torch.sigmoid(sdf[:, 1:] * sharpness)
    return ((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)).clamp(0.0, 1.0)


def _weights(alpha: torch.Tensor) -> torch.Tensor:
    clear = torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-7], dim=1)
    transmittance = torch.cumprod(clear, dim=1)
    return alpha * transmittance[:, :-1]


def _sample_pdf(t: torch.Tensor, weights: torch.Tensor, count: int, generator: torch.Generator | None,
                ) -> torch.Tensor:
    """``count`` distances per ray drawn from the piecewise-constant pdf of ``weights`` over ``t``."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(dim=1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=1)], dim=1)  # (R, S)
    u = torch.rand(t.shape[0], count, generator=generator, device=t.device)
    idx = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=True).clamp(1, t.shape[1] - 1)
    c0, c1 = torch.gather(cdf, 1, idx - 1), torch.gather(cdf, 1, idx)
    t0, t1 = torch.gather(t, 1, idx - 1), torch.gather(t, 1, idx)
    frac = ((u - c0) / (c1 - c0).clamp(min=1e-8)).clamp(0.0, 1.0)
    return t0 + frac * (t1 - t0)


def render_rays(field: SurfaceField, origins: torch.Tensor, dirs: torch.Tensor, coarse: int, fine: int,
                generator: torch.Generator | None = None, background: torch.Tensor | None = None) -> Rendered:
    near, far = sphere_near_far(origins, dirs)
    steps = torch.linspace(0.0, 1.0, coarse, device=origins.device)
    jitter = (torch.rand(origins.shape[0], 1, generator=generator, device=origins.device) - 0.5) / coarse
    t = near[:, None] + (far - near)[:, None] * (steps[None] + jitter).clamp(0.0, 1.0)
    if fine > 0:
        with torch.no_grad():
            pts = origins[:, None] + dirs[:, None] * t[..., None]
            sdf = field.sdf(pts.reshape(-1, 3)).reshape(t.shape)
            extra = _sample_pdf(t, _weights(_alpha(sdf, COARSE_SHARPNESS)), fine, generator)
        t, _ = torch.sort(torch.cat([t, extra], dim=1), dim=1)
    pts = origins[:, None] + dirs[:, None] * t[..., None]  # (R, S, 3)
    sdf, geometry = field.sdf_and_geometry(pts.reshape(-1, 3))
    sdf = sdf.reshape(t.shape)
    weights = _weights(_alpha(sdf, field.sharpness))  # (R, S-1)
    mid_pts = (pts[:, 1:] + pts[:, :-1]) / 2.0
    geo_mid = (geometry.reshape(*t.shape, -1)[:, 1:] + geometry.reshape(*t.shape, -1)[:, :-1]) / 2.0
    view = dirs[:, None].expand_as(mid_pts)
    colors = field.color(geo_mid.reshape(-1, geo_mid.shape[-1]), mid_pts.reshape(-1, 3), view.reshape(-1, 3))
    colors = colors.reshape(*mid_pts.shape[:2], 3)
    opacity = weights.sum(dim=1)
    rgb = (weights[..., None] * colors).sum(dim=1)
    if background is not None:
        rgb = rgb + (1.0 - opacity)[:, None] * background
    depth = (weights * (t[:, 1:] + t[:, :-1]) / 2.0).sum(dim=1)
    return Rendered(rgb, opacity, depth, pts, weights)
