"""Adaptive density control (3DGS, simplified): Gaussians whose mean view-space gradient is high
are cloned when small and split in two when large; nearly transparent ones are pruned; the
count never passes the splat cap. The Adam state follows the rows that stay; new rows start at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from recon.splat.gaussians import PARAM_NAMES, quat_to_rotmat

SPLIT_SHRINK = 1.6


@dataclass
class DensifyStats:
    grad_sum: Tensor  # [N] summed norm of d loss / d means2d in NDC units
    count: Tensor  # [N] views in which the Gaussian was drawn

    @classmethod
    def empty(cls, n: int, device: torch.device | str = "cpu") -> DensifyStats:
        return cls(torch.zeros(n, device=device), torch.zeros(n, device=device))

    def add(self, grad2d: Tensor, radii: Tensor, width: int, height: int) -> None:
        g = grad2d.detach().reshape(-1, 2) * torch.tensor([0.5 * width, 0.5 * height], device=grad2d.device)
        seen = radii.reshape(-1) > 0  # g is in NDC units now
        self.grad_sum[seen] += g[seen].norm(dim=-1)
        self.count[seen] += 1

    def state(self) -> dict[str, Tensor]:
        return {"grad_sum": self.grad_sum.clone(), "count": self.count.clone()}

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> DensifyStats:
        return cls(state["grad_sum"].clone(), state["count"].clone())


def densify_and_prune(params: dict[str, Tensor], optimizer: torch.optim.Adam, stats: DensifyStats,
                      grad_threshold: float, prune_opacity: float, max_splats: int,
                      large_scale: float, seed: int = 0) -> tuple[dict[str, Tensor], torch.optim.Adam]:
    """New (params, optimizer) after one densify-and-prune round."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        n = params["means"].shape[0]
        mean_grad = stats.grad_sum / stats.count.clamp(min=1)
        opacity = torch.sigmoid(params["opacity_logits"])
        keep = opacity >= prune_opacity  # [N]
        grow = (mean_grad > grad_threshold) & keep
        room = max(0, max_splats - int(keep.sum()))
        grow_idx = torch.nonzero(grow).squeeze(1)
        if grow_idx.numel() > room:  # the cap: keep the strongest gradients
            grow_idx = grow_idx[mean_grad[grow_idx].argsort(descending=True)[:room]]
        scales = torch.exp(params["log_scales"])
        large = scales.max(dim=1).values > large_scale
        split_idx, clone_idx = grow_idx[large[grow_idx]], grow_idx[~large[grow_idx]]

        new_rows = {k: [params[k][clone_idx]] for k in PARAM_NAMES}
        if split_idx.numel():
            # One child at a sample of the parent Gaussian; the parent moves to another, both shrink.
            rot = quat_to_rotmat(params["quats"][split_idx])
            for _ in range(2):
                noise = torch.randn(split_idx.numel(), 3, generator=gen).to(scales.device)
                offset = (rot @ (noise * scales[split_idx])[..., None]).squeeze(-1)
                child = {k: params[k][split_idx].clone() for k in PARAM_NAMES}
                child["means"] = child["means"] + offset
                child["log_scales"] = child["log_scales"] - math.log(SPLIT_SHRINK)
                for k in PARAM_NAMES:
                    new_rows[k].append(child[k])
            keep[split_idx] = False
        source = torch.nonzero(keep).squeeze(1)
        new = {k: torch.cat([params[k][source], *new_rows[k]]) for k in PARAM_NAMES}
        added = new["means"].shape[0] - source.numel()
    out = {k: v.requires_grad_(True) for k, v in new.items()}
    return out, _carry_optimizer(optimizer, params, out, source, added, n)


def _carry_optimizer(old: torch.optim.Adam, old_params: dict[str, Tensor], new_params: dict[str, Tensor],
                     source: Tensor, added: int, n: int) -> torch.optim.Adam:
    groups: list[dict[str, Any]] = []
    for group in old.param_groups:
        name = group["name"]
        settings = {k: v for k, v in group.items() if k != "params"}
        tensor = new_params[name] if name in new_params else group["params"][0]
        groups.append({**settings, "params": [tensor]})
    fresh = torch.optim.Adam(groups)
    for group in old.param_groups:
        name = group["name"]
        old_tensor = group["params"][0]
        state = old.state.get(old_tensor)
        if not state:
            continue
        target = new_params.get(name, old_tensor)
        if name not in new_params:
            fresh.state[target] = state
            continue
        carried = {}
        for key, value in state.items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == n:
                pad = torch.zeros((added, *value.shape[1:]), dtype=value.dtype, device=value.device)
                carried[key] = torch.cat([value[source], pad])
            else:
                carried[key] = value
        fresh.state[target] = carried
    return fresh
