"""Plane-sweep stereo with a zero-mean NCC cost, and multi-view geometric consistency filtering.

For each reference view, fronto-parallel planes are swept through its depth range (uniform in
inverse depth); every neighbour is warped onto each plane by a homography and compared with the
reference over a small window. The best half of the neighbours' costs is averaged (robust to
occlusion), the minimum over planes wins, and a parabola through the neighbouring planes gives
sub-plane depth. Depth maps are then kept only where enough other views agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from recon.mvs.views import View


@dataclass(frozen=True)
class SweepConfig:
    num_planes: int = 96
    window: int = 7  # NCC window side, pixels
    max_cost: float = 0.45  # 1 - NCC; larger is rejected
    min_texture: float = 0.004  # std-dev of the reference window below which a pixel is skipped


@dataclass(frozen=True)
class DepthMap:
    depth: np.ndarray  # (H, W) float32, 0 = unknown
    cost: np.ndarray  # (H, W) float32, 1 - NCC of the winner


def _box(img: np.ndarray, win: int) -> np.ndarray:
    return cv2.boxFilter(img, cv2.CV_32F, (win, win), borderType=cv2.BORDER_REFLECT)


def plane_homography(ref: View, src: View, depth: float) -> np.ndarray:
    """(3, 3) homography taking reference pixels to source pixels for the plane z_ref = depth."""
    T = src.w2c @ ref.c2w  # reference camera -> source camera
    R, t = T[:3, :3], T[:3, 3:4]
    n = np.array([[0.0, 0.0, 1.0]])
    return src.K @ (R + t @ n / depth) @ np.linalg.inv(ref.K)


def sweep_depth(ref: View, sources: list[View], near: float, far: float, cfg: SweepConfig,
                cancel: Callable[[], None] | None = None) -> DepthMap:
    """Depth for every reference pixel by plane sweep against ``sources``."""
    h, w = ref.gray.shape
    win = cfg.window
    ref_img = ref.gray
    mu_i = _box(ref_img, win)
    var_i = np.maximum(_box(ref_img * ref_img, win) - mu_i * mu_i, 0.0)
    sd_i = np.sqrt(var_i)
    inv = np.linspace(1.0 / near, 1.0 / far, cfg.num_planes)  # (D,)
    costs = np.empty((cfg.num_planes, h, w), np.float32)  # (D, H, W)
    keep = max(1, (len(sources) + 1) // 2)
    ones = np.ones((h, w), np.float32)
    for d, inv_d in enumerate(inv):
        if cancel is not None and d % 16 == 0:
            cancel()
        per_src = np.empty((len(sources), h, w), np.float32)  # (S, H, W)
        for s, src in enumerate(sources):
            H = plane_homography(ref, src, 1.0 / inv_d)
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            J = cv2.warpPerspective(src.gray, H, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
            inside = cv2.warpPerspective(ones, H, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
            mu_j = _box(J, win)
            var_j = np.maximum(_box(J * J, win) - mu_j * mu_j, 0.0)
            cov = _box(ref_img * J, win) - mu_i * mu_j
            ncc = cov / (sd_i * np.sqrt(var_j) + 1e-6)
            c = 1.0 - ncc
            c[inside < 0.999] = 2.0
            per_src[s] = c
        per_src.sort(axis=0)
        costs[d] = per_src[:keep].mean(axis=0)
    best = np.argmin(costs, axis=0)  # (H, W)
    rows, cols = np.indices((h, w))
    c0 = costs[best, rows, cols]
    # Parabolic refinement in inverse depth between the neighbouring planes.
    lo = np.clip(best - 1, 0, cfg.num_planes - 1)
    hi = np.clip(best + 1, 0, cfg.num_planes - 1)
    cl, ch = costs[lo, rows, cols], costs[hi, rows, cols]
    denom = cl - 2.0 * c0 + ch
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where((denom > 1e-6) & (lo != best) & (hi != best), 0.5 * (cl - ch) / denom, 0.0)
    step = inv[1] - inv[0] if cfg.num_planes > 1 else 0.0
    inv_best = inv[best] + np.clip(offset, -0.5, 0.5) * step
    depth = (1.0 / inv_best).astype(np.float32)
    valid = (c0 <= cfg.max_cost) & (sd_i >= cfg.min_texture) & (best > 0) & (best < cfg.num_planes - 1)
    depth[~valid] = 0.0
    return DepthMap(depth, c0.astype(np.float32))


def backproject(view: View, depth: np.ndarray) -> np.ndarray:
    """(H, W, 3) world points of a depth map (undefined where depth is 0)."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    Kinv = np.linalg.inv(view.K)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ Kinv.T  # (H, W, 3)
    cam = rays * depth[..., None]
    return cam @ view.c2w[:3, :3].T + view.c2w[:3, 3]


def consistency_filter(views: list[View], depths: list[np.ndarray], neighbours: list[list[int]],
                       min_agree: int = 2, max_px: float = 1.0, max_rel: float = 0.01) -> list[np.ndarray]:
    """Keep a pixel's depth only where at least ``min_agree`` neighbours see the same surface:
    projecting it into the neighbour, reading the neighbour's depth there and projecting back
    lands within ``max_px`` pixels and ``max_rel`` relative depth of where it started."""
    out = []
    for i, view in enumerate(views):
        d = depths[i]
        h, w = d.shape
        X = backproject(view, d).reshape(-1, 3)  # (HW, 3)
        agree = np.zeros(h * w, np.int32)
        u0, v0 = np.meshgrid(np.arange(w), np.arange(h))
        for j in neighbours[i]:
            nb = views[j]
            dj = depths[j]
            Xc = X @ nb.w2c[:3, :3].T + nb.w2c[:3, 3]
            z = Xc[:, 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                uv = Xc @ nb.K.T
                u, v = uv[:, 0] / z, uv[:, 1] / z
            hj, wj = dj.shape
            ui, vi = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
            ok = (z > 0) & (ui >= 0) & (ui < wj) & (vi >= 0) & (vi < hj) & (d.reshape(-1) > 0)
            dn = np.zeros_like(z)
            dn[ok] = dj[vi[ok], ui[ok]]
            ok &= dn > 0
            # Back from the neighbour's surface point into the reference.
            Xn = backproject(nb, dj).reshape(-1, 3)
            Xb = Xn[np.where(ok, vi * wj + ui, 0)]
            Xr = Xb @ view.w2c[:3, :3].T + view.w2c[:3, 3]
            with np.errstate(divide="ignore", invalid="ignore"):
                uvr = Xr @ view.K.T
                ur, vr = uvr[:, 0] / Xr[:, 2], uvr[:, 1] / Xr[:, 2]
                px = np.hypot(ur - u0.reshape(-1), vr - v0.reshape(-1))
                rel = np.abs(Xr[:, 2] - d.reshape(-1)) / np.maximum(d.reshape(-1), 1e-9)
            agree += (ok & (px < max_px) & (rel < max_rel)).astype(np.int32)
        keep = (agree >= min_agree).reshape(h, w)
        out.append(np.where(keep, d, 0.0).astype(np.float32))
    return out
