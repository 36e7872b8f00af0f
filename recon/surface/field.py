"""The hash-grid SDF and colour networks, with coarse-to-fine level masking and numerical gradients.

The hash encoding is nerfstudio's ``HashEncoding``: tiny-cuda-nn when it imports, its pure-torch
implementation otherwise (so the field trains on any CPU). Points are in the field's unit
sphere; the grid covers the cube [-1, 1]^3. The SDF starts as a sphere of radius
``INIT_RADIUS`` (the network only learns the difference), which keeps the first steps stable.
"""

from __future__ import annotations

import torch
from torch import nn

INIT_RADIUS = 0.5
GEO_FEATURES = 15
HIDDEN = 64
BASE_RESOLUTION = 16
FEATURES_PER_LEVEL = 2
INIT_LEVELS = 4  # active from the first step; one more every ``steps_per_level``


def tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class SurfaceField(nn.Module):
    def __init__(self, levels: int, max_resolution: int, log2_table_size: int,
                 use_tcnn: bool = False) -> None:
        super().__init__()
        from nerfstudio.field_components.encodings import HashEncoding

        self.levels = levels
        self.encoding = HashEncoding(
            num_levels=levels, min_res=BASE_RESOLUTION, max_res=max_resolution,
            log2_hashmap_size=log2_table_size, features_per_level=FEATURES_PER_LEVEL,
            implementation="tcnn" if use_tcnn else "torch",
        )
        self.resolutions = [float(r) for r in self.encoding.scalings]
        n_enc = levels * FEATURES_PER_LEVEL
        self.sdf_net = nn.Sequential(nn.Linear(3 + n_enc, HIDDEN), nn.Softplus(beta=100),
                                     nn.Linear(HIDDEN, 1 + GEO_FEATURES))
        with torch.no_grad():  # start as the sphere: the learned part begins near zero
            self.sdf_net[-1].weight.mul_(0.1)
            self.sdf_net[-1].bias.zero_()
        self.color_net = nn.Sequential(nn.Linear(GEO_FEATURES + 3 + 3, HIDDEN), nn.ReLU(),
                                       nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 3))
        # NeuS's sharpness s = exp(10 * log_s_tenth): learned, starts wide.
        self.log_s_tenth = nn.Parameter(torch.tensor(0.3))
        self.register_buffer("level_mask", torch.ones(levels * FEATURES_PER_LEVEL))
        self.set_active_levels(min(INIT_LEVELS, levels))

    def set_active_levels(self, active: int) -> None:
        active = max(1, min(self.levels, active))
        self.active_levels = active
        mask = torch.zeros(self.levels, FEATURES_PER_LEVEL)
        mask[:active] = 1.0
        self.level_mask.copy_(mask.reshape(-1))

    @property
    def gradient_step(self) -> float:
        """Finite-difference step in field units: one cell of the finest active level."""
        return 2.0 / self.resolutions[self.active_levels - 1]

    @property
    def sharpness(self) -> torch.Tensor:
        return torch.exp(10.0 * self.log_s_tenth).clamp(1.0, 1e6)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        unit = ((x + 1.0) / 2.0).clamp(0.0, 1.0)  # the encoding's input domain
        encoded = self.encoding(unit).float() * self.level_mask
        return self.sdf_net(torch.cat([x, encoded], dim=-1))

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N,)"""
        return self._features(x)[..., 0] + x.norm(dim=-1) - INIT_RADIUS

    def sdf_and_geometry(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._features(x)
        return out[..., 0] + x.norm(dim=-1) - INIT_RADIUS, out[..., 1:]

    def color(self, geometry: torch.Tensor, x: torch.Tensor, view_dirs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.color_net(torch.cat([geometry, x, view_dirs], dim=-1)))

    def gradient_and_laplacian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SDF, its gradient by 6-tap central differences, and its Laplacian from the same taps.

        x: (N, 3) -> sdf (N,), gradient (N, 3), laplacian (N,)
        """
        eps = self.gradient_step
        offsets = torch.eye(3, device=x.device, dtype=x.dtype) * eps  # (3, 3)
        # (7, N, 3): +x +y +z, -x -y -z, centre
        taps = torch.cat([x[None] + offsets[:, None], x[None] - offsets[:, None], x[None]], dim=0)
        values = self.sdf(taps.reshape(-1, 3)).reshape(7, -1)
        plus, minus, centre = values[:3], values[3:6], values[6]
        gradient = ((plus - minus) / (2.0 * eps)).T
        laplacian = ((plus + minus - 2.0 * centre) / (eps * eps)).sum(dim=0)
        return centre, gradient, laplacian
