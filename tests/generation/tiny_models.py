"""Tiny random Stable Diffusion 1.5 + depth ControlNet weights, built in code and saved as the
folders a user would download (a diffusers pipeline folder and a ControlNet folder), so tests load
them through the same registry code as real weights. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch


def _byte_chars() -> list[str]:
    """The printable stand-in for each byte that byte-level BPE vocabularies use (GPT-2 / CLIP)."""
    kept = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars = {b: chr(b) for b in kept}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in _byte_chars():
        vocab[c] = len(vocab)
    for c in _byte_chars():
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _wake_up(controlnet) -> None:
    """A new ControlNet's hint embedding and output convolutions are zero (so training starts from the
    plain UNet): give them random weights, or the tiny ControlNet would have no effect at all."""
    with torch.no_grad():
        zeroed = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                  controlnet.controlnet_cond_embedding.conv_out]
        for conv in zeroed:
            torch.nn.init.normal_(conv.weight, std=0.3)


def tiny_sd15_parts(seed: int = 0) -> dict:
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=514, bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32))
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=8)
    controlnet = ControlNetModel(
        block_out_channels=(32, 64), layers_per_block=1, in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=32,
        conditioning_embedding_out_channels=(8, 16), norm_num_groups=8, attention_head_dim=8)
    _wake_up(controlnet)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8, layers_per_block=1, sample_size=32)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"text_encoder": text_encoder, "unet": unet, "controlnet": controlnet, "vae": vae,
            "scheduler": scheduler, "tokenizer": tiny_tokenizer()}


def save_tiny_sd15(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/base`` (a Stable Diffusion pipeline folder) and ``root/controlnet``; returns both."""
    from diffusers import StableDiffusionPipeline

    parts = tiny_sd15_parts(seed)
    controlnet = parts.pop("controlnet")
    base = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    base.save_pretrained(root / "base")
    controlnet.save_pretrained(root / "controlnet")
    return root / "base", root / "controlnet"


def save_tiny_depth_anything(folder: Path, seed: int = 0) -> Path:
    """A tiny random Depth Anything (Dinov2 backbone) and its image processor, saved like the hub's."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    torch.manual_seed(seed)
    backbone = Dinov2Config(image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=4,
                            num_attention_heads=4, intermediate_size=37,
                            out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False)
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8))
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": 28, "width": 28}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def save_tiny_sdxl(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/base`` (an SDXL pipeline folder) and ``root/controlnet``; returns both."""
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    sdxl = {"cross_attention_dim": 64, "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 80, "transformer_layers_per_block": (1, 2),
            "use_linear_projection": True, "attention_head_dim": (2, 4), "block_out_channels": (32, 64),
            "layers_per_block": 1, "norm_num_groups": 8, "in_channels": 4,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D")}
    unet = UNet2DConditionModel(sample_size=16, out_channels=4,
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), **sdxl)
    controlnet = ControlNetModel(conditioning_embedding_out_channels=(8, 16), **sdxl)
    _wake_up(controlnet)
    text = CLIPTextConfig(vocab_size=514, bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                          intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8, layers_per_block=1, sample_size=32)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1)
    base = StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(text), text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=scheduler)
    base.save_pretrained(root / "base")
    controlnet.save_pretrained(root / "controlnet")
    return root / "base", root / "controlnet"


def _tiny_shap_e_parts(seed: int, image_conditioned: bool) -> dict:
    """A tiny random Shap-E prior, scheduler and renderer (the shapes of diffusers' own test models).

    A random renderer's signed distance is a constant sign; its output bias is set so that its
    implicit function is inside (> 0) over the cube and the decoded shape is a closed solid."""
    from diffusers import HeunDiscreteScheduler, PriorTransformer
    from diffusers.pipelines.shap_e import ShapERenderer

    torch.manual_seed(seed)
    width = 16
    prior = PriorTransformer(
        num_attention_heads=2, attention_head_dim=16, embedding_dim=width, num_embeddings=32,
        embedding_proj_dim=32, time_embed_dim=64, num_layers=1, clip_embed_dim=2 * width,
        additional_embeddings=0, time_embed_act_fn="gelu", norm_in_type="layer",
        embedding_proj_norm_type="layer" if image_conditioned else None,
        encoder_hid_proj_type=None, added_emb_type=None)
    hidden = 8
    renderer = ShapERenderer(param_shapes=((hidden, 93), (hidden, 8), (hidden, 8), (hidden, 8)),
                             d_latent=width, d_hidden=hidden, n_output=12, background=(0.1, 0.1, 0.1))
    with torch.no_grad():
        renderer.mlp.mlp[-1].weight[0].mul_(0.1)
        renderer.mlp.mlp[-1].bias[0] = 1.0
    scheduler = HeunDiscreteScheduler(beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
                                      use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0)
    return {"prior": prior, "scheduler": scheduler, "shap_e_renderer": renderer}


def save_tiny_shap_e(folder: Path, seed: int = 0) -> Path:
    """A tiny random text-to-3D Shap-E pipeline folder (what ``openai/shap-e`` holds, in miniature)."""
    from diffusers import ShapEPipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    parts = _tiny_shap_e_parts(seed, image_conditioned=False)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=514, bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32))
    ShapEPipeline(text_encoder=text_encoder, tokenizer=tiny_tokenizer(), **parts).save_pretrained(folder)
    return folder


def save_tiny_shap_e_img2img(folder: Path, seed: int = 0) -> Path:
    """A tiny random image-to-3D Shap-E pipeline folder (``openai/shap-e-img2img`` in miniature)."""
    from diffusers import ShapEImg2ImgPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    parts = _tiny_shap_e_parts(seed, image_conditioned=True)
    encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, projection_dim=32))
    processor = CLIPImageProcessor(size=32, crop_size=32, do_center_crop=True, do_resize=True, resample=3)
    ShapEImg2ImgPipeline(image_encoder=encoder, image_processor=processor, **parts).save_pretrained(folder)
    return folder


def save_tiny_ip_adapter(folder: Path, unet, seed: int = 0) -> Path:
    """A tiny random IP-Adapter for ``unet`` in the hub's layout (models/ip-adapter_sd15.safetensors and
    models/image_encoder/, a CLIPVisionModelWithProjection); returns ``folder``."""
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    clip_dim, tokens = 32, 4
    cross_dim = unet.config.cross_attention_dim
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=clip_dim, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        patch_size=8, intermediate_size=37))
    encoder.save_pretrained(folder / "models" / "image_encoder")
    weights = {
        "image_proj.proj.weight": torch.randn(cross_dim * tokens, clip_dim) * 0.3,
        "image_proj.proj.bias": torch.zeros(cross_dim * tokens),
        "image_proj.norm.weight": torch.ones(cross_dim),
        "image_proj.norm.bias": torch.zeros(cross_dim),
    }
    for index, name in enumerate(unet.attn_processors):  # diffusers numbers every processor; attn2 are odd
        if name.endswith("attn2.processor"):
            hidden = unet.get_submodule(name.removesuffix(".processor")).to_q.out_features
            for kv in ("k", "v"):
                weights[f"ip_adapter.{index}.to_{kv}_ip.weight"] = torch.randn(hidden, cross_dim) * 0.3
    save_file(weights, str(folder / "models" / "ip-adapter_sd15.safetensors"))
    return folder
