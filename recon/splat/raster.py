"""A differentiable Gaussian rasterizer in plain torch, for CPU and Apple MPS.

The 3DGS forward model: each Gaussian is moved into the camera, its covariance projected with
the EWA local-affine Jacobian of the pinhole projection, dilated by a low-pass ``eps2d`` (as
gsplat does), and every pixel alpha-composites the Gaussians front to back in depth order.
It evaluates every pixel against every visible Gaussian (in pixel chunks), which is fine for the
small images a CPU can train on. Pixel (row i, column j) is the image point (j + 0.5, i + 0.5),
the capture's and gsplat's convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recon.splat.gaussians import colors_from_sh, covariances

ALPHA_MIN = 1.0 / 255.0  # weaker contributions are dropped (as in 3DGS)
ALPHA_MAX = 0.99
GUARD_BAND = 1.3  # Jacobians are evaluated at most this far outside the field of view (x tan)


@dataclass
class Projection:
    means2d: Tensor  # [N, 2] pixels
    conics: Tensor  # [N, 3] upper triangle (a, b, c) of the inverse 2D covariance
    depths: Tensor  # [N] camera z
    radii: Tensor  # [N] int pixels, 0 = not drawn
    covars2d: Tensor  # [N, 2, 2] (with the low-pass)


@dataclass
class Render:
    rgb: Tensor  # [H, W, 3]
    alpha: Tensor  # [H, W]
    depth: Tensor  # [H, W] expected z-depth of the visible Gaussians (0 where alpha is 0)
    means2d: Tensor  # [N, 2], its .grad after backward drives densification
    radii: Tensor  # [N]
    # [H, W] depth of the Gaussian where transmittance drops below 0.5 (0: never); no mixing of
    # foreground and background at silhouettes, so it is what the mesh fuses. None: not rendered.
    median_depth: Tensor | None = None


def project(means: Tensor, covars: Tensor, viewmat: Tensor, K: Tensor, width: int, height: int,
            eps2d: float = 0.3, near: float = 0.01) -> Projection:
    """means [N, 3], covars [N, 3, 3] world; viewmat [4, 4] world-to-camera; K [3, 3]."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    p_cam = means @ R.T + t  # [N, 3]
    cov_cam = R @ covars @ R.T  # [N, 3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x, y, z = p_cam.unbind(-1)  # [N] each
    z_safe = torch.where(z > near, z, torch.full_like(z, near))
    # The Jacobian is only trusted near the view: clamp x/z, y/z to a guard band around it.
    lim_x_lo, lim_x_hi = -(cx / fx) * GUARD_BAND, ((width - cx) / fx) * GUARD_BAND
    lim_y_lo, lim_y_hi = -(cy / fy) * GUARD_BAND, ((height - cy) / fy) * GUARD_BAND
    u = (x / z_safe).clamp(lim_x_lo, lim_x_hi)
    v = (y / z_safe).clamp(lim_y_lo, lim_y_hi)
    zero = torch.zeros_like(z)
    J = torch.stack([
        torch.stack([fx / z_safe, zero, -fx * u / z_safe], dim=-1),
        torch.stack([zero, fy / z_safe, -fy * v / z_safe], dim=-1),
    ], dim=-2)  # [N, 2, 3]
    cov2d = J @ cov_cam @ J.transpose(-1, -2) + eps2d * torch.eye(2, dtype=means.dtype)  # [N, 2, 2]
    a, b, c = cov2d[:, 0, 0], 0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]), cov2d[:, 1, 1]
    det = (a * c - b * b).clamp(min=1e-10)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)  # [N, 3]
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)  # [N, 2]
    half = 0.5 * (a + c)
    lam_max = half + torch.sqrt((half * half - det).clamp(min=0.01))
    radius = torch.ceil(3.0 * torch.sqrt(lam_max)).detach()
    on_screen = ((means2d[:, 0] + radius > 0) & (means2d[:, 0] - radius < width)
                 & (means2d[:, 1] + radius > 0) & (means2d[:, 1] - radius < height)).detach()
    drawn = (z > near).detach() & on_screen
    radii = torch.where(drawn, radius, torch.zeros_like(radius)).int()
    return Projection(means2d, conics, z, radii, cov2d)


TILE = 8  # pixels per tile edge: each tile composites only the Gaussians that reach it
MAX_PAIRS_PER_CHUNK = 2_000_000  # pixel x Gaussian evaluations held at once


def _tile_lists(means2d: Tensor, radii: Tensor, depths: Tensor, tiles_x: int, tiles_y: int) -> Tensor:
    """[T, K] Gaussian indices per tile, front to back, padded with N (a transparent dummy)."""
    n = means2d.shape[0]
    drawn = torch.nonzero(radii > 0).squeeze(1)
    r = radii[drawn].float()
    m = means2d[drawn].detach()
    x0 = ((m[:, 0] - r) / TILE).floor().clamp(0, tiles_x - 1).long()
    x1 = ((m[:, 0] + r) / TILE).floor().clamp(0, tiles_x - 1).long()
    y0 = ((m[:, 1] - r) / TILE).floor().clamp(0, tiles_y - 1).long()
    y1 = ((m[:, 1] + r) / TILE).floor().clamp(0, tiles_y - 1).long()
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    per = nx * ny  # tiles each Gaussian touches
    owner = torch.repeat_interleave(torch.arange(drawn.numel()), per)  # [P]
    first = torch.cumsum(per, 0) - per
    local = torch.arange(owner.numel()) - first[owner]
    tile = (y0[owner] + local // nx[owner]) * tiles_x + x0[owner] + local % nx[owner]  # [P]
    rank = torch.empty(drawn.numel(), dtype=torch.long)
    rank[torch.argsort(depths[drawn].detach())] = torch.arange(drawn.numel())
    order = torch.argsort(tile * (drawn.numel() + 1) + rank[owner])
    tile, gauss = tile[order], drawn[owner[order]]
    counts = torch.bincount(tile, minlength=tiles_x * tiles_y)  # [T]
    k = int(counts.max()) if counts.numel() and tile.numel() else 0
    lists = torch.full((tiles_x * tiles_y, max(k, 1)), n, dtype=torch.long)
    slot = torch.arange(tile.numel()) - (torch.cumsum(counts, 0) - counts)[tile]
    lists[tile, slot] = gauss
    return lists


def rasterize(params: dict[str, Tensor], viewmat: Tensor, K: Tensor, width: int, height: int,
              background: Tensor) -> Render:
    """Render one view. params: recon.splat.gaussians tensors; background [3]."""
    means = params["means"]
    scales = torch.exp(params["log_scales"])
    opacity = torch.sigmoid(params["opacity_logits"])  # [N]
    campos = -viewmat[:3, :3].T @ viewmat[:3, 3]
    colors = colors_from_sh(params, campos)  # [N, 3]
    proj = project(means, covariances(params["quats"], scales), viewmat, K, width, height)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()

    tiles_x, tiles_y = -(-width // TILE), -(-height // TILE)
    lists = _tile_lists(means2d, proj.radii, proj.depths, tiles_x, tiles_y)  # [T, K]
    # Index N is a dummy: zero opacity, so padding slots add nothing.
    pad1 = torch.zeros(1, dtype=means.dtype)
    m2d = torch.cat([means2d, torch.zeros(1, 2, dtype=means.dtype)])
    con = torch.cat([proj.conics, torch.zeros(1, 3, dtype=means.dtype)])
    opa = torch.cat([opacity, pad1])
    col = torch.cat([colors, torch.zeros(1, 3, dtype=means.dtype)])
    dep = torch.cat([proj.depths, pad1])

    offs = torch.arange(TILE, dtype=means.dtype) + 0.5
    oy, ox = torch.meshgrid(offs, offs, indexing="ij")
    local = torch.stack([ox.reshape(-1), oy.reshape(-1)], dim=-1)  # [TILE*TILE, 2]
    t_ids = torch.arange(tiles_x * tiles_y)
    corner = torch.stack([(t_ids % tiles_x) * TILE, (t_ids // tiles_x) * TILE], dim=-1).to(means.dtype)
    step = max(1, MAX_PAIRS_PER_CHUNK // (TILE * TILE * lists.shape[1]))
    rgb_parts, alpha_parts, depth_parts, median_parts = [], [], [], []
    for s in range(0, lists.shape[0], step):
        idx = lists[s:s + step]  # [t, K]
        pix = corner[s:s + step, None, :] + local  # [t, 64, 2]
        d = pix[:, :, None, :] - m2d[idx][:, None, :, :]  # [t, 64, K, 2]
        c = con[idx][:, None]  # [t, 1, K, 3]
        dx, dy = d[..., 0], d[..., 1]
        sigma = 0.5 * (c[..., 0] * dx * dx + c[..., 2] * dy * dy) + c[..., 1] * dx * dy  # [t, 64, K]
        alpha = (opa[idx][:, None] * torch.exp(-sigma)).clamp(max=ALPHA_MAX)  # [t, 64, K]
        alpha = torch.where((alpha >= ALPHA_MIN) & (sigma >= 0), alpha, torch.zeros_like(alpha))
        trans = torch.cumprod(1.0 - alpha, dim=-1)  # transmittance after each Gaussian
        before = torch.cat([torch.ones_like(trans[..., :1]), trans[..., :-1]], dim=-1)
        weights = alpha * before  # [t, 64, K]
        acc = weights.sum(-1)  # [t, 64]
        rgb_parts.append(torch.einsum("tpk,tkc->tpc", weights, col[idx]) + trans[..., -1:] * background)
        alpha_parts.append(acc)
        ed = torch.einsum("tpk,tk->tp", weights, dep[idx])
        depth_parts.append(torch.where(acc > 1e-6, ed / acc.clamp(min=1e-6), torch.zeros_like(acc)))
        opaque = trans < 0.5  # [t, 64, K]
        first = opaque.to(torch.uint8).argmax(dim=-1)  # [t, 64]
        median = torch.gather(dep[idx][:, None, :].expand_as(trans), -1, first[..., None])[..., 0]
        median_parts.append(torch.where(opaque.any(dim=-1), median, torch.zeros_like(median)).detach())

    def image(parts: list[Tensor], channels: int) -> Tensor:
        x = torch.cat(parts).reshape(tiles_y, tiles_x, TILE, TILE, channels)
        x = x.permute(0, 2, 1, 3, 4).reshape(tiles_y * TILE, tiles_x * TILE, channels)
        return x[:height, :width]

    rgb = image(rgb_parts, 3)
    alpha = image([a[..., None] for a in alpha_parts], 1)[..., 0]
    depth = image([e[..., None] for e in depth_parts], 1)[..., 0]
    median = image([m[..., None] for m in median_parts], 1)[..., 0]
    return Render(rgb, alpha, depth, means2d, proj.radii, median)
