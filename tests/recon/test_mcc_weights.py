"""The published checkpoint's layout loads strictly; our own format round-trips."""

from __future__ import annotations

import argparse

import pytest
import torch

from core.errors import InputError
from recon.mcc.model import MCCConfig
from recon.mcc.weights import load_model, save_model


def _block(prefix: str, dim: int, mlp_ratio: float) -> dict[str, tuple[int, ...]]:
    hidden = int(dim * mlp_ratio)
    return {f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
            f"{prefix}.attn.qkv.weight": (3 * dim, dim), f"{prefix}.attn.qkv.bias": (3 * dim,),
            f"{prefix}.attn.proj.weight": (dim, dim), f"{prefix}.attn.proj.bias": (dim,),
            f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
            f"{prefix}.mlp.fc1.weight": (hidden, dim), f"{prefix}.mlp.fc1.bias": (hidden,),
            f"{prefix}.mlp.fc2.weight": (dim, hidden), f"{prefix}.mlp.fc2.bias": (dim,)}


def published_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of Meta's co3dv2_all_categories.pth, written out from the research notes
    (shared/notes/neural.md section 4.1), not from our model code."""
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, 768), "cls_token_xyz": (1, 1, 768), "pos_embed": (1, 197, 768),
        "patch_embed.proj.weight": (768, 3, 16, 16), "patch_embed.proj.bias": (768,),
        "xyz_pos_embed.two_d_pos_embed": (1, 65, 768), "xyz_pos_embed.cls_token": (1, 1, 768),
        "xyz_pos_embed.invalid_xyz_token": (768,),
        "xyz_pos_embed.pos_embed.weight": (768, 3), "xyz_pos_embed.pos_embed.bias": (768,),
        "norm.weight": (768,), "norm.bias": (768,), "norm_xyz.weight": (768,), "norm_xyz.bias": (768,),
        "decoder_embed.weight": (512, 1536), "decoder_embed.bias": (512,),
        "decoder_pos_embed": (1, 197, 512),
        "decoder_xyz_pos_embed.pos_embed.weight": (512, 3), "decoder_xyz_pos_embed.pos_embed.bias": (512,),
        "decoder_norm.weight": (512,), "decoder_norm.bias": (512,),
        "decoder_pred.weight": (1 + 3 * 256, 512), "decoder_pred.bias": (1 + 3 * 256,),
    }
    shapes.update(_block("xyz_pos_embed.blocks.0", 768, 2.0))
    for i in range(12):
        shapes.update(_block(f"blocks.{i}", 768, 4.0))
        shapes.update(_block(f"blocks_xyz.{i}", 768, 4.0))
    for i in range(8):
        shapes.update(_block(f"decoder_blocks.{i}", 512, 4.0))
    return shapes


def test_published_layout_loads_strictly(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.empty(shape).uniform_(-0.05, 0.05, generator=gen)
             for k, shape in published_layout().items()}
    path = tmp_path / "co3dv2_all_categories.pth"
    torch.save({"model": state, "epoch": 99, "args": argparse.Namespace(blr=1e-4, n_groups=550)}, path)

    loaded = load_model(path)

    assert loaded.source == "published"
    assert "CC-BY-NC" in loaded.about["licence"]
    got = loaded.model.state_dict()
    assert set(got) == set(state)
    for key in ("decoder_pred.weight", "xyz_pos_embed.invalid_xyz_token", "blocks_xyz.11.mlp.fc2.bias"):
        assert torch.equal(got[key], state[key])


def test_published_layout_with_a_missing_key_is_refused(tmp_path):
    layout = published_layout()
    del layout["decoder_blocks.7.mlp.fc1.weight"]
    state = {k: torch.zeros(shape) for k, shape in layout.items()
             if "blocks" not in k or k.startswith("decoder")}
    path = tmp_path / "broken.pth"
    torch.save({"model": state}, path)
    with pytest.raises(InputError) as e:
        load_model(path)
    assert "broken.pth" in str(e.value)


def test_not_a_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8 not torch")
    with pytest.raises(InputError) as e:
        load_model(path)
    assert "photo.jpg" in str(e.value)


def test_our_format_round_trips(tmp_path):
    from recon.mcc.model import MCC

    config = MCCConfig(rgb_size=32, patch_size=8, embed_dim=32, depth=1, heads=2, xyz_size=16, window=4,
                       decoder_dim=32, decoder_depth=1, decoder_heads=2, colour_bins=8, occupancy="solid")
    model = MCC(config)
    save_model(model, tmp_path / "m.pt", {"steps": 3}, half=False)
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.source == "scanbridge" and loaded.config == config and loaded.about == {"steps": 3}
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
