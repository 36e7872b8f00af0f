"""The Gaussians' parameters (as in 3DGS) and how they become render quantities.

Parameters are stored unconstrained: log-scales, raw quaternions (w, x, y, z), opacity logits and
SH coefficients (DC and, optionally, degree 1). Colour = 0.5 + SH(view direction), clamped at 0,
which is what gsplat and the standard splat PLY assume.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

SH_C0 = 0.28209479177387814  # Y_0^0
SH_C1 = 0.4886025119029199  # |Y_1^m|
PARAM_NAMES = ("means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest")


def inverse_sigmoid(p: float) -> float:
    return math.log(p / (1.0 - p))


def init_params(points: np.ndarray, colors: np.ndarray | None, sh_degree: int,
                init_opacity: float = 0.1, seed: int = 0) -> dict[str, Tensor]:
    """Gaussians at ``points`` (N, 3), isotropic with the scale of their 3 nearest neighbours.

    colors: (N, 3) in 0..1 (None: grey). Returns float32 tensors keyed by PARAM_NAMES.
    """
    pts = torch.as_tensor(np.asarray(points, np.float32))  # [N, 3]
    n = pts.shape[0]
    gen = torch.Generator().manual_seed(seed)
    nn_dist = _mean_knn_distance(pts, k=3)  # [N]
    log_scales = torch.log(nn_dist.clamp(min=1e-6))[:, None].repeat(1, 3)  # [N, 3]
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    quats = quats + 0.01 * torch.randn(n, 4, generator=gen)  # [N, 4], away from the same pole
    rgb = torch.full((n, 3), 0.5) if colors is None else torch.as_tensor(np.asarray(colors, np.float32))
    sh_dc = (rgb - 0.5) / SH_C0  # [N, 3]
    rest = 3 if sh_degree >= 1 else 0
    return {
        "means": pts.clone(),
        "log_scales": log_scales,
        "quats": quats,
        "opacity_logits": torch.full((n,), inverse_sigmoid(init_opacity)),
        "sh_dc": sh_dc,
        "sh_rest": torch.zeros(n, rest, 3),  # [N, K-1, 3]
    }


def _mean_knn_distance(pts: Tensor, k: int, chunk: int = 2048) -> Tensor:
    n = pts.shape[0]
    if n <= 1:
        return torch.full((n,), 0.01)
    out = torch.empty(n)
    for start in range(0, n, chunk):
        d = torch.cdist(pts[start:start + chunk], pts)  # [B, N]
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")
        near = d.topk(min(k, n - 1), dim=1, largest=False).values  # [B, k]
        out[start:start + chunk] = near.mean(dim=1)
    return out


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[..., 4] (w, x, y, z), any norm -> [..., 3, 3]."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    w, x, y, z = q.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def covariances(quats: Tensor, scales: Tensor) -> Tensor:
    """World-space covariances R S S^T R^T. quats [N, 4], scales [N, 3] -> [N, 3, 3]."""
    rs = quat_to_rotmat(quats) * scales[:, None, :]  # [N, 3, 3]: columns scaled
    return rs @ rs.transpose(-1, -2)


def sh_coefficients(params: dict[str, Tensor]) -> Tensor:
    """[N, K, 3] with K = 1 (DC) or 4 (degree 1), gsplat's ``colors`` layout."""
    return torch.cat([params["sh_dc"][:, None, :], params["sh_rest"]], dim=1)


def sh_degree_of(params: dict[str, Tensor]) -> int:
    return 1 if params["sh_rest"].shape[1] >= 3 else 0


def colors_from_sh(params: dict[str, Tensor], campos: Tensor) -> Tensor:
    """Per-Gaussian RGB seen from camera centre ``campos`` [3]: [N, 3], >= 0."""
    rgb = SH_C0 * params["sh_dc"]  # [N, 3]
    if sh_degree_of(params) >= 1:
        d = params["means"] - campos  # [N, 3]
        x, y, z = (d / d.norm(dim=-1, keepdim=True).clamp(min=1e-12)).unbind(-1)
        rest = params["sh_rest"]  # [N, 3, 3]: m = -1, 0, 1
        rgb = rgb + SH_C1 * (-y[:, None] * rest[:, 0] + z[:, None] * rest[:, 1] - x[:, None] * rest[:, 2])
    return (rgb + 0.5).clamp(min=0.0)
