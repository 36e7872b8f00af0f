"""The models a user can choose, and the presets that combine them.

Nothing here is shipped: each entry names where the weights come from (a hub id that diffusers or
transformers fetches on first use when the user allows downloads, or a local folder the user
registered) and the licence the user accepts by using them.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a model is for; the loader picks the class from it.
KINDS = ("sd15", "sdxl", "controlnet", "lora", "depth-estimator", "ip-adapter", "shap-e", "shap-e-img2img")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # our short name, also the key of a user's local folder in settings.model_paths
    kind: str  # one of KINDS
    hub_id: str  # where diffusers / transformers fetch it from when downloads are allowed
    licence: str
    licence_url: str
    size_gb: float  # download size, said before a first download
    note: str = ""


MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    ModelSpec("sd15", "sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5",
              "CreativeML OpenRAIL-M (use restrictions apply)",
              "https://huggingface.co/spaces/CompVis/stable-diffusion-license", 5.2),
    ModelSpec("sd15-controlnet-depth", "controlnet", "lllyasviel/control_v11f1p_sd15_depth",
              "CreativeML OpenRAIL-M", "https://huggingface.co/lllyasviel/control_v11f1p_sd15_depth", 1.4),
    ModelSpec("sd15-controlnet-canny", "controlnet", "lllyasviel/control_v11p_sd15_canny",
              "CreativeML OpenRAIL-M", "https://huggingface.co/lllyasviel/control_v11p_sd15_canny", 1.4,
              note="storyboard mode: structure from a mock-up's lines"),
    ModelSpec("sdxl-controlnet-canny", "controlnet", "diffusers/controlnet-canny-sdxl-1.0",
              "CreativeML OpenRAIL++-M", "https://huggingface.co/diffusers/controlnet-canny-sdxl-1.0", 5.0,
              note="storyboard mode: structure from a mock-up's lines"),
    ModelSpec("sdxl", "sdxl", "stabilityai/stable-diffusion-xl-base-1.0",
              "CreativeML OpenRAIL++-M (use restrictions apply)",
              "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md", 7.0),
    ModelSpec("sdxl-controlnet-depth", "controlnet", "diffusers/controlnet-depth-sdxl-1.0",
              "CreativeML OpenRAIL++-M", "https://huggingface.co/diffusers/controlnet-depth-sdxl-1.0", 5.0),
    ModelSpec("lcm-lora-sd15", "lora", "latent-consistency/lcm-lora-sdv1-5",
              "CreativeML OpenRAIL++-M", "https://huggingface.co/latent-consistency/lcm-lora-sdv1-5", 0.14,
              note="needs the peft package (pip install 'scanbridge[gen]')"),
    ModelSpec("ip-adapter-sd15", "ip-adapter", "h94/IP-Adapter", "Apache-2.0",
              "https://huggingface.co/h94/IP-Adapter", 0.7,
              note="a reference image's look (its CLIP image embedding) for SD 1.5 presets"),
    ModelSpec("ip-adapter-sdxl", "ip-adapter", "h94/IP-Adapter", "Apache-2.0",
              "https://huggingface.co/h94/IP-Adapter", 3.4,
              note="a reference image's look (its CLIP image embedding) for SDXL presets"),
    ModelSpec("depth-anything-v2-small", "depth-estimator", "depth-anything/Depth-Anything-V2-Small-hf",
              "Apache-2.0", "https://huggingface.co/depth-anything/Depth-Anything-V2-Small-hf", 0.1,
              note="only for frames without sensor or rendered depth"),
    ModelSpec("shap-e", "shap-e", "openai/shap-e", "MIT", "https://huggingface.co/openai/shap-e", 2.8,
              note="text to 3D (generation/create)"),
    ModelSpec("shap-e-img2img", "shap-e-img2img", "openai/shap-e-img2img", "MIT",
              "https://huggingface.co/openai/shap-e-img2img", 3.2,
              note="one photo to 3D (generation/create)"),
)}


@dataclass(frozen=True)
class Preset:
    name: str
    base: str  # a MODELS name (sd15 or sdxl kind)
    controlnet: str
    lora: str | None = None
    scheduler: str = "ddim"  # "ddim" or "lcm"
    steps: int = 25
    guidance: float = 7.5
    size: int = 512  # the long side of a keyframe
    description: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("sd15-depth", "sd15", "sd15-controlnet-depth",
           description="Stable Diffusion 1.5 + depth ControlNet"),
    Preset("sdxl-depth", "sdxl", "sdxl-controlnet-depth", steps=30, guidance=6.0, size=1024,
           description="SDXL + depth ControlNet: better detail, about 3x the memory and time"),
    Preset("sd15-lcm", "sd15", "sd15-controlnet-depth", lora="lcm-lora-sd15", scheduler="lcm", steps=6,
           guidance=1.5, description="fast mode: SD 1.5 + depth ControlNet with LCM-LoRA, 4-8 steps"),
)}

DEPTH_ESTIMATOR = "depth-anything-v2-small"


@dataclass(frozen=True)
class AdapterFiles:
    """Where an IP-Adapter's weights and its CLIP image encoder lie inside its folder (or hub repository)."""

    subfolder: str
    weight_name: str
    image_encoder: str  # a folder under ``subfolder``, or a path from the root when it holds a '/'


IP_ADAPTER_FILES = {  # by model name; a user's own folder uses the sd15 layout unless named here
    "ip-adapter-sd15": AdapterFiles("models", "ip-adapter_sd15.safetensors", "image_encoder"),
    "ip-adapter-sdxl": AdapterFiles("sdxl_models", "ip-adapter_sdxl.safetensors",
                                    "sdxl_models/image_encoder"),
}
EDGE_CONTROLNET_FOR = {"sd15": "sd15-controlnet-canny", "sdxl": "sdxl-controlnet-canny"}  # storyboard
IP_ADAPTER_FOR = {"sd15": "ip-adapter-sd15", "sdxl": "ip-adapter-sdxl"}  # by base family
