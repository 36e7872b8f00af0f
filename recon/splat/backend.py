"""Which rasterizer trains: gsplat's CUDA kernels on an NVIDIA GPU, our plain-torch one
(recon.splat.raster) on CPU and Apple MPS. Both take and return the same things."""

from __future__ import annotations

import torch
from torch import Tensor

from core.errors import ConfigError, DependencyError
from recon.splat.gaussians import sh_coefficients, sh_degree_of
from recon.splat.raster import Render, rasterize

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(requested: str) -> str:
    if requested not in DEVICES:
        raise ConfigError(f"expected one of {', '.join(DEVICES)}, got {requested!r}", "splat.device")
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise DependencyError("no CUDA device is visible to torch", "splat.device")
    return requested


def gsplat_rasterize(params: dict[str, Tensor], viewmat: Tensor, K: Tensor, width: int, height: int,
                     background: Tensor) -> Render:
    """gsplat.rasterization over our parameters (RGB + expected depth)."""
    import gsplat

    colors, alphas, meta = gsplat.rasterization(
        params["means"], params["quats"], torch.exp(params["log_scales"]),
        torch.sigmoid(params["opacity_logits"]), sh_coefficients(params),
        viewmat[None], K[None], width, height, sh_degree=sh_degree_of(params),
        render_mode="RGB+ED", backgrounds=None, packed=False,
    )
    means2d = meta["means2d"]  # [1, N, 2]
    if means2d.requires_grad:
        means2d.retain_grad()
    alpha = alphas[0, ..., 0]
    rgb = colors[0, ..., :3] + (1.0 - alpha)[..., None] * background
    return Render(rgb, alpha, colors[0, ..., 3], means2d, meta["radii"][0])


def gsplat_kernels() -> None:
    """Import gsplat and make sure its CUDA kernels are built (the first use compiles them, which
    takes minutes); one DependencyError naming what is missing otherwise."""
    import shutil

    try:
        from gsplat.cuda import _backend
    except ImportError as e:
        raise DependencyError(f"gsplat is not installed ({e})", "gsplat") from None
    if getattr(_backend, "_C", None) is None:
        why = ("nvcc (the CUDA toolkit's compiler) is not on PATH" if shutil.which("nvcc") is None
               else "its kernels failed to compile (see the log)")
        raise DependencyError(f"gsplat cannot rasterize on CUDA: {why}; install the CUDA toolkit "
                              "matching torch, or train on the CPU with --detail preview", "gsplat")


def renderer_for(device: str):  # noqa: ANN201 (a Renderer callable)
    if device == "cuda":
        gsplat_kernels()
        return gsplat_rasterize
    return rasterize
