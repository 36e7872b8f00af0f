"""The MCC network: its decoder is the paper's masked attention; a tiny one learns one object."""

from __future__ import annotations

import numpy as np
import torch

from recon.mcc.evaluate import iou
from recon.mcc.model import MCC, MCCConfig
from recon.mcc.train import TrainSettings, generated_view, train

TINY = MCCConfig(rgb_size=32, patch_size=8, embed_dim=32, depth=1, heads=2, xyz_size=16, window=4,
                 decoder_dim=32, decoder_depth=2, decoder_heads=2, colour_bins=8, occupancy="solid")


def _masked_reference(model: MCC, tokens: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """The decoder as the paper describes it: one sequence [tokens; queries] with an additive mask
    that lets every position see the tokens and, among the queries, only itself."""
    n, q = tokens.shape[1], queries.shape[1]
    allowed = torch.zeros(n + q, n + q, dtype=torch.bool)
    allowed[:, :n] = True
    allowed[n:, n:] = torch.eye(q, dtype=torch.bool)
    mask = torch.zeros(n + q, n + q).masked_fill(~allowed, float("-inf"))
    x = torch.cat([tokens, model.decoder_xyz_pos_embed.pos_embed(queries)], dim=1)
    for block in model.decoder_blocks:
        h = block.norm1(x)
        b, t, d = h.shape
        heads = block.attn.heads
        qkv = block.attn.qkv(h).reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        att = (qkv[0] @ qkv[1].transpose(-1, -2)) / (d // heads) ** 0.5 + mask
        out = (att.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(b, t, d)
        x = x + block.attn.proj(out)
        x = x + block.mlp.fc2(torch.nn.functional.gelu(block.mlp.fc1(block.norm2(x))))
    return model.decoder_pred(model.decoder_norm(x))[:, n:]


def test_decoder_is_the_masked_attention_and_chunks_are_exact():
    torch.manual_seed(0)
    model = MCC(TINY).eval()
    rgb = torch.rand(1, 3, 32, 32)
    xyz = torch.randn(1, 16, 16, 3)
    valid = torch.rand(1, 16, 16) > 0.3
    queries = torch.randn(1, 10, 3)
    with torch.no_grad():
        # the encoder tokens the decoder starts from, computed as the paper does
        x = model.patch_embed((rgb - model._mean) / model._std) + model.pos_embed[:, 1:]
        x = torch.cat([model.cls_token + model.pos_embed[:, :1], x], dim=1)
        for blk in model.blocks:
            x = blk(x)
        y = torch.cat([model.cls_token_xyz, model.xyz_pos_embed(xyz, valid)], dim=1)
        for blk in model.blocks_xyz:
            y = blk(y)
        fused = torch.cat([model.norm(x), model.norm_xyz(y)], 2)
        tokens = model.decoder_embed(fused) + model.decoder_pos_embed
        expected = _masked_reference(model, tokens, queries)
        encoded = model.encode(rgb, xyz, valid)
        together = model.decode(encoded, queries)
        first, rest = model.decode(encoded, queries[:, :3]), model.decode(encoded, queries[:, 3:])
        in_chunks = torch.cat([first, rest], 1)
    assert torch.allclose(together, expected, atol=1e-5)
    assert torch.allclose(in_chunks, together, atol=1e-5)


def test_invalid_points_use_the_invalid_token():
    torch.manual_seed(1)
    model = MCC(TINY).eval()
    xyz = torch.randn(1, 16, 16, 3)
    valid = torch.ones(1, 16, 16, dtype=torch.bool)
    valid[0, :4, :4] = False
    changed = xyz.clone()
    changed[0, :4, :4] = 1e6  # whatever an invalid pixel holds must not matter
    with torch.no_grad():
        a = model.xyz_pos_embed(xyz, valid)
        b = model.xyz_pos_embed(changed, valid)
    assert torch.equal(a, b)


def test_tiny_model_overfits_one_generated_object():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: threads only fight
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    view = generated_view(rng, TINY, image_size=64)
    model = MCC(TINY)
    settings = TrainSettings(steps=300, batch=1, queries=512, lr=3e-3, pool=1, seed=0, log_every=100)
    train(model, settings, lambda _rng: view)
    torch.set_num_threads(threads)

    # occupancy on a grid around the object against the exact truth (independent of the model)
    lo = view.surface.min(0).values - 0.3
    hi = view.surface.max(0).values + 0.3
    axes = [torch.linspace(float(lo[i]), float(hi[i]), 24) for i in range(3)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    truth = (view.truth(grid)[0] < 0).numpy()
    with torch.no_grad():
        enc = model.encode(torch.from_numpy(view.view.rgb)[None], torch.from_numpy(view.view.xyz)[None],
                           torch.from_numpy(view.view.valid)[None])
        pred = (model.decode(enc, grid[None])[0, :, 0] > 0).numpy()
    assert truth.mean() > 0.05  # the grid really holds the object
    assert iou(pred, truth) > 0.8
