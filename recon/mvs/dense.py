"""Depth maps for every posed view: plane sweep per view, then cross-view consistency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.progress import CancelToken, Progress
from recon.mvs.plane_sweep import SweepConfig, consistency_filter, sweep_depth
from recon.mvs.views import View, depth_range, look_at_point, select_neighbours


@dataclass(frozen=True)
class DenseConfig:
    max_image_size: int = 384  # stereo runs at this resolution (longer side)
    num_neighbours: int = 4
    num_planes: int = 96
    window: int = 7
    max_cost: float = 0.45
    min_agree: int = 2  # views that must agree with a depth for it to be kept
    max_reproj_px: float = 2.0
    max_rel_depth: float = 0.02


def dense_depths(views: list[View], points: np.ndarray | None, cfg: DenseConfig,
                 progress: Progress, cancel: CancelToken) -> list[np.ndarray]:
    """(H, W) float32 depth per view, 0 where unknown or inconsistent."""
    target = look_at_point(views)
    dist = float(np.median([np.linalg.norm(v.center - target) for v in views]))
    fallback = (dist * 0.6, dist * 1.4)
    sweep = SweepConfig(num_planes=cfg.num_planes, window=cfg.window, max_cost=cfg.max_cost)
    neighbours = [select_neighbours(views, i, cfg.num_neighbours) for i in range(len(views))]
    raw = []
    for i, view in enumerate(views):
        cancel.check()
        if not neighbours[i]:
            progress.warning(f"{view.name}: no neighbouring view at a usable angle; skipped")
            raw.append(np.zeros(view.gray.shape, np.float32))
            continue
        near, far = depth_range(view, points, fallback)
        dm = sweep_depth(view, [views[j] for j in neighbours[i]], near, far, sweep, cancel.check)
        raw.append(dm.depth)
        progress.update((i + 1) / len(views) * 0.9, f"depth for {view.name} ({i + 1}/{len(views)})")
    filtered = consistency_filter(views, raw, neighbours, cfg.min_agree, cfg.max_reproj_px, cfg.max_rel_depth)
    kept = sum(int((d > 0).sum()) for d in filtered)
    progress.update(1.0, f"{kept} consistent depth samples")
    return filtered
