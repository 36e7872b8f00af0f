"""Cross-frame attention: each keyframe's self-attention also sees the first and the previous keyframe.

Written for ScanBridge (the idea is Text2Video-Zero's and Rerender-A-Video's). The batch a UNet
sees holds ``frames`` keyframes in order, repeated once per guidance branch ([unconditional...,
conditional...]). In every self-attention layer a frame's queries attend to the keys and values of
the batch's first frame, of the frame before it, and of itself, so colours and textures chosen for
the first frame carry over. Frame 0 attends to itself three times over, which is exactly plain
self-attention. Cross-attention (to the prompt) is unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F


class FrameLayout:
    """How many keyframes the next UNet call holds; one per pipeline, set before each batch."""

    def __init__(self, frames: int = 1) -> None:
        self.frames = frames


def anchored(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, N, C) tokens -> (B, 3N, C): for each frame, the first frame's, the previous frame's and its own."""
    batch, tokens, channels = x.shape
    groups = batch // frames
    per_frame = x.view(groups, frames, tokens, channels)
    previous = per_frame[:, [max(i - 1, 0) for i in range(frames)]]
    first = per_frame[:, :1].expand(-1, frames, -1, -1)
    return torch.cat([first, previous, per_frame], dim=2).view(batch, 3 * tokens, channels)


class CrossFrameAttention:
    """An attention processor for diffusers' ``Attention`` (install with ``cross_frame_attention``)."""

    def __init__(self, layout: FrameLayout) -> None:
        self.layout = layout

    def __call__(self, attn: Any, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **_: Any) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        spatial = hidden_states.shape if hidden_states.ndim == 4 else None
        if spatial is not None:
            b, c, h, w = spatial
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch = hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        self_attention = encoder_hidden_states is None
        context = hidden_states if self_attention else encoder_hidden_states
        if not self_attention and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key, value = attn.to_k(context), attn.to_v(context)
        frames = self.layout.frames
        if self_attention and frames > 1 and batch % frames == 0:
            key, value = anchored(key, frames), anchored(value, frames)
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, key.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        head_dim = key.shape[-1] // attn.heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, -1, attn.heads, head_dim).transpose(1, 2)

        query, key, value = heads(query), heads(key), heads(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if spatial is not None:
            out = out.transpose(-1, -2).reshape(spatial)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


@contextlib.contextmanager
def cross_frame_attention(unet: Any, layout: FrameLayout) -> Iterator[None]:
    """Install CrossFrameAttention on every self-attention layer of ``unet``; restore the old ones after."""
    before = dict(unet.attn_processors)
    processor = CrossFrameAttention(layout)
    unet.set_attn_processor({name: processor if name.endswith("attn1.processor") else old
                             for name, old in before.items()})
    try:
        yield
    finally:
        unet.set_attn_processor(before)
