"""The MCC network (Multiview Compressive Coding, Wu et al., CVPR 2023), written from the paper.

Two encoders read one RGB-D view: a ViT over the RGB crop (16-pixel patches) and a ViT over the
seen 3D points, where each 8x8 window of the point map first becomes one token through a small
transformer of its own. Their token sequences (same length) are concatenated channel-wise, and
a decoder reads them with query points appended: every query attends to all encoder tokens and
to itself only, so queries never see each other and can be evaluated in any chunks. Each query
gets an occupancy logit and a colour (per channel, a softmax over ``colour_bins`` bins).

Module names follow the published checkpoint's state-dict layout, so its weights load strictly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OCCUPANCY_KINDS = ("surface", "solid")  # near-surface shell (published) | inside the object (ours)


@dataclass(frozen=True)
class MCCConfig:
    """Sizes of the network. The defaults are the published model's (ViT-B encoders)."""

    rgb_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    xyz_size: int = 112
    window: int = 8
    window_mlp_ratio: float = 2.0
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    colour_bins: int = 256
    occupancy: str = "surface"  # what the occupancy logit means (OCCUPANCY_KINDS)
    world_size: float = 3.0  # queries cover [-world_size, world_size]^3 in normalised units

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "occupancy":
                if value not in OCCUPANCY_KINDS:
                    raise ConfigError(f"must be one of {', '.join(OCCUPANCY_KINDS)}", "mcc.occupancy")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 < value <= 4096:
                raise ConfigError(f"expected a positive size, got {value!r}", f"mcc.{f.name}")
        if self.rgb_size % self.patch_size or self.xyz_size % self.window:
            raise ConfigError("rgb_size and xyz_size must be multiples of patch_size and window", "mcc")
        if self.patches != (self.xyz_size // self.window) ** 2:
            raise ConfigError("the RGB and point encoders must make the same number of tokens", "mcc")
        if self.embed_dim % self.heads or self.decoder_dim % self.decoder_heads:
            raise ConfigError("embedding sizes must divide by the head counts", "mcc")

    @property
    def patches(self) -> int:
        return (self.rgb_size // self.patch_size) ** 2

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> MCCConfig:
        if not isinstance(data, dict):
            raise ConfigError("the model config is not a mapping", "mcc.config")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise ConfigError(f"unknown model config keys: {names}", "mcc.config")
        return cls(**data)


def sincos_2d(dim: int, grid: int, cls_token: bool) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding [1, grid*grid (+1), dim] (a zero row for cls)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / max(quarter, 1))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                            torch.arange(grid, dtype=torch.float64), indexing="ij")
    parts = []
    for coord in (xs.reshape(-1), ys.reshape(-1)):
        angles = coord[:, None] * omega[None]
        parts += [torch.sin(angles), torch.cos(angles)]
    emb = torch.cat(parts, dim=1)
    emb = F.pad(emb, (0, dim - emb.shape[1]))
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb])
    return emb.float()[None]


def _fixed(value: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value, requires_grad=False)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each [B, H, N, hd]

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, hd = x.shape
        return self.proj(x.transpose(1, 2).reshape(b, n, h * hd))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, qkv bias)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.attn.split(self.norm1(x))
        x = x + self.attn.merge(F.scaled_dot_product_attention(q, k, v))
        return x + self.mlp(self.norm2(x))

    def forward_keep_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As forward, also returning this block's keys and values for the queries."""
        q, k, v = self.attn.split(self.norm1(x))
        x = x + self.attn.merge(F.scaled_dot_product_attention(q, k, v))
        return x + self.mlp(self.norm2(x)), k, v

    def forward_queries(self, x: torch.Tensor, k_enc: torch.Tensor, v_enc: torch.Tensor) -> torch.Tensor:
        """Queries attend to the encoder tokens' keys/values and to themselves, never to each other."""
        q, k, v = self.attn.split(self.norm1(x))
        scale = q.shape[-1] ** -0.5
        to_tokens = torch.einsum("bhqd,bhnd->bhqn", q, k_enc) * scale
        to_self = (q * k).sum(-1, keepdim=True) * scale
        weights = torch.cat([to_tokens, to_self], dim=-1).softmax(dim=-1)
        out = torch.einsum("bhqn,bhnd->bhqd", weights[..., :-1], v_enc) + weights[..., -1:] * v
        x = x + self.attn.merge(out)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class XYZPosEmbed(nn.Module):
    """Seen points [B, S, S, 3] to one token per window: a linear map per point, an invalid-point
    token, then a one-block transformer per window whose cls output is the window's token."""

    def __init__(self, dim: int, window: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.pos_embed = nn.Linear(3, dim)
        self.invalid_xyz_token = nn.Parameter(torch.zeros(dim))
        self.two_d_pos_embed = _fixed(sincos_2d(dim, window, cls_token=True))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio)])

    def forward(self, xyz: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, s, _, _ = xyz.shape
        w, n = self.window, s // self.window
        emb = self.pos_embed(torch.where(valid[..., None], xyz, torch.zeros_like(xyz)))
        emb = torch.where(valid[..., None], emb, self.invalid_xyz_token.expand_as(emb))
        windows = emb.reshape(b, n, w, n, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(b * n * n, w * w, -1)
        windows = torch.cat([self.cls_token.expand(len(windows), -1, -1), windows], dim=1)
        windows = windows + self.two_d_pos_embed
        for block in self.blocks:
            windows = block(windows)
        return windows[:, 0].reshape(b, n * n, -1)


class DecoderXYZEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pos_embed = nn.Linear(3, dim)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        return self.pos_embed(xyz)


@dataclass
class Encoded:
    """One view encoded: each decoder block's keys and values of the encoder tokens."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]


class MCC(nn.Module):
    def __init__(self, config: MCCConfig) -> None:
        super().__init__()
        c = self.config = config
        grid = c.rgb_size // c.patch_size
        self.patch_embed = PatchEmbed(c.patch_size, c.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = _fixed(sincos_2d(c.embed_dim, grid, cls_token=True))
        self.blocks = nn.ModuleList([Block(c.embed_dim, c.heads, c.mlp_ratio) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.embed_dim, eps=1e-6)
        self.xyz_pos_embed = XYZPosEmbed(c.embed_dim, c.window, c.heads, c.window_mlp_ratio)
        self.cls_token_xyz = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.blocks_xyz = nn.ModuleList([Block(c.embed_dim, c.heads, c.mlp_ratio) for _ in range(c.depth)])
        self.norm_xyz = nn.LayerNorm(c.embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(2 * c.embed_dim, c.decoder_dim)
        self.decoder_pos_embed = _fixed(sincos_2d(c.decoder_dim, grid, cls_token=True))
        self.decoder_xyz_pos_embed = DecoderXYZEmbed(c.decoder_dim)
        self.decoder_blocks = nn.ModuleList(
            [Block(c.decoder_dim, c.decoder_heads, c.mlp_ratio) for _ in range(c.decoder_depth)])
        self.decoder_norm = nn.LayerNorm(c.decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(c.decoder_dim, 1 + 3 * c.colour_bins)
        for p in (self.cls_token, self.cls_token_xyz, self.xyz_pos_embed.cls_token):
            nn.init.normal_(p, std=0.02)
        self.reset_constants()

    def reset_constants(self) -> None:
        """The image normalisation constants (not in the state dict; remade after a meta-device load)."""
        device = self.decoder_pred.weight.device
        device = torch.device("cpu") if device.type == "meta" else device
        self.register_buffer("_mean", torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("_std", torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1),
                             persistent=False)

    def encode(self, rgb: torch.Tensor, xyz: torch.Tensor, valid: torch.Tensor) -> Encoded:
        """rgb [B, 3, R, R] in 0..1; xyz [B, S, S, 3] normalised seen points; valid [B, S, S]."""
        x = self.patch_embed((rgb - self._mean) / self._std) + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(x), -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        y = self.xyz_pos_embed(xyz, valid)
        y = torch.cat([self.cls_token_xyz.expand(len(y), -1, -1), y], dim=1)
        for block in self.blocks_xyz:
            y = block(y)
        y = self.norm_xyz(y)
        tokens = self.decoder_embed(torch.cat([x, y], dim=2)) + self.decoder_pos_embed
        keys, values = [], []
        for block in self.decoder_blocks:
            tokens, k, v = block.forward_keep_kv(tokens)
            keys.append(k)
            values.append(v)
        return Encoded(keys, values)

    def decode(self, encoded: Encoded, queries: torch.Tensor) -> torch.Tensor:
        """queries [B, Q, 3] (normalised) -> raw predictions [B, Q, 1 + 3 * colour_bins]."""
        q = self.decoder_xyz_pos_embed(queries)
        for block, k, v in zip(self.decoder_blocks, encoded.keys, encoded.values, strict=True):
            q = block.forward_queries(q, k, v)
        return self.decoder_pred(self.decoder_norm(q))

    def forward(self, rgb: torch.Tensor, xyz: torch.Tensor, valid: torch.Tensor,
                queries: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(rgb, xyz, valid), queries)


def split_prediction(raw: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw predictions to (occupancy logits [..., Q], colour-bin logits [..., Q, 3, bins])."""
    return raw[..., 0], raw[..., 1:].reshape(*raw.shape[:-1], 3, bins)


def expected_colour(colour_logits: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Colour in 0..1 per channel: the bins' centres weighted by a tempered softmax."""
    bins = colour_logits.shape[-1]
    centres = torch.linspace(0, 1, bins, device=colour_logits.device, dtype=colour_logits.dtype)
    return ((colour_logits / temperature).softmax(dim=-1) * centres).sum(-1)


def shrink_far_points(xyz: torch.Tensor, threshold: float = 10.0) -> torch.Tensor:
    """Points beyond radius ``threshold`` pulled inside 2*threshold (r -> t*(2 - t/r))."""
    r = xyz.norm(dim=-1, keepdim=True)
    far = r > threshold
    return torch.where(far, xyz / r.clamp_min(1e-12) * threshold * (2 - threshold / r.clamp_min(1e-12)), xyz)
