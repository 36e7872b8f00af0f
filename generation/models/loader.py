"""Loading resolved models into diffusers / transformers objects, with the runtime settings applied.

Every load goes through ``_from_pretrained``: local folders and, when downloads are off, hub ids
are opened with ``local_files_only=True``, so nothing is fetched unless the user allowed it; a
model that is not on the machine is one DependencyError naming it and where to put it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from core.errors import ConfigError, DependencyError, InputError
from generation.models.registry import ResolvedModel
from generation.models.runtime import RuntimeSettings

PIPELINE_CLASSES = {
    ("sd15", "stylize"): "StableDiffusionControlNetImg2ImgPipeline",
    ("sd15", "mask"): "StableDiffusionControlNetInpaintPipeline",
    ("sdxl", "stylize"): "StableDiffusionXLControlNetImg2ImgPipeline",
    ("sdxl", "mask"): "StableDiffusionXLControlNetInpaintPipeline",
    ("sd15", "render"): "StableDiffusionControlNetPipeline",
    ("sdxl", "render"): "StableDiffusionXLControlNetPipeline",
}


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float16": torch.float16, "float32": torch.float32}[name]


def _from_pretrained(cls: Any, model: ResolvedModel, *, allow_download: bool,
                     models_dir: Path | None = None, **kwargs: Any) -> Any:
    offline = model.local or not allow_download
    try:
        return cls.from_pretrained(model.location, local_files_only=offline, **kwargs)
    except (OSError, ValueError) as e:
        if model.local:
            raise InputError(f"cannot load model {model.name!r} from this folder: {e}",
                             model.location) from None
        if offline:
            raise DependencyError(
                f"model {model.name!r} is not on this machine and downloads are off: "
                f"{model.where_to_put(models_dir)}, or allow the download (--download)", model.name) from None
        raise DependencyError(f"could not fetch model {model.name!r} ({model.location}): {e}",
                              model.name) from None


def require_package(package: str, why: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise DependencyError(f"{why} needs the {package} package (pip install {package})", package)


def load_restyle_pipeline(base: ResolvedModel, controlnet: ResolvedModel, runtime: RuntimeSettings, *,
                          lora: ResolvedModel | None = None, scheduler: str = "ddim",
                          allow_download: bool = False, models_dir: Path | None = None) -> Any:
    """The depth-ControlNet img2img pipeline for ``base`` (sd15 or sdxl), ready on the device."""
    import diffusers

    if base.kind not in ("sd15", "sdxl"):
        raise ConfigError(f"a base model must be sd15 or sdxl, not {base.kind}", base.name)
    dtype = _torch_dtype(runtime.dtype)
    net = _from_pretrained(diffusers.ControlNetModel, controlnet, allow_download=allow_download,
                           models_dir=models_dir, dtype=dtype)
    cls = getattr(diffusers, PIPELINE_CLASSES[(base.kind, "stylize")])
    extra = {"safety_checker": None, "requires_safety_checker": False} if base.kind == "sd15" else {}
    pipe = _from_pretrained(cls, base, allow_download=allow_download, models_dir=models_dir,
                            controlnet=net, dtype=dtype, **extra)
    if scheduler == "lcm":
        pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
    elif scheduler != "ddim":
        raise ConfigError("must be ddim or lcm", "scheduler")
    else:
        pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    if lora is not None:
        require_package("peft", f"the LoRA {lora.name!r}")
        try:
            pipe.load_lora_weights(lora.location, local_files_only=lora.local or not allow_download)
        except (OSError, ValueError) as e:
            raise DependencyError(f"cannot load LoRA {lora.name!r}: {e}; {lora.where_to_put(models_dir)}",
                                  lora.name) from None
        pipe.fuse_lora()
    apply_runtime(pipe, runtime)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def apply_runtime(pipe: Any, runtime: RuntimeSettings) -> None:
    if runtime.cpu_offload:
        require_package("accelerate", "model CPU offload (for GPUs with little free memory)")
        pipe.enable_model_cpu_offload(device=runtime.device)
    else:
        pipe.to(runtime.device)
    if runtime.vae_tiling:
        pipe.vae.enable_tiling()


def mode_pipeline(pipe: Any, family: str, mode: str) -> Any:
    """The pipeline for ``mode`` (stylize: img2img, mask: inpainting, render: text-to-image), made from a
    loaded restyle pipeline and sharing its weights (nothing is loaded again)."""
    import diffusers

    if mode in ("stylize", "storyboard"):  # storyboard: the same img2img, an edge ControlNet
        return pipe
    twin = getattr(diffusers, PIPELINE_CLASSES[(family, mode)]).from_pipe(pipe)
    twin.set_progress_bar_config(disable=True)
    return twin


def unet_parameters(pipe: Any) -> int:
    return int(sum(p.numel() for p in pipe.unet.parameters()))


def load_depth_estimator(model: ResolvedModel, *, device: str = "cpu", allow_download: bool = False,
                         models_dir: Path | None = None) -> tuple[Any, Any]:
    """(image processor, depth model) of a transformers depth estimator such as Depth Anything V2."""
    import transformers

    processor = _from_pretrained(transformers.AutoImageProcessor, model, allow_download=allow_download,
                                 models_dir=models_dir)
    net = _from_pretrained(transformers.AutoModelForDepthEstimation, model, allow_download=allow_download,
                           models_dir=models_dir)
    return processor, net.to(device).eval()


SHAP_E_PIPELINES = {"shap-e": "ShapEPipeline", "shap-e-img2img": "ShapEImg2ImgPipeline"}


def load_shap_e_pipeline(model: ResolvedModel, *, device: str = "cpu", dtype: str = "float32",
                         allow_download: bool = False, models_dir: Path | None = None) -> Any:
    """diffusers' Shap-E text-to-3D or image-to-3D pipeline (prior, encoder, scheduler, renderer)."""
    import diffusers

    if model.kind not in SHAP_E_PIPELINES:
        raise ConfigError(f"a Shap-E model must be shap-e or shap-e-img2img, not {model.kind}", model.name)
    cls = getattr(diffusers, SHAP_E_PIPELINES[model.kind])
    pipe = _from_pretrained(cls, model, allow_download=allow_download, models_dir=models_dir,
                            dtype=_torch_dtype(dtype))
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_text_to_image_pipeline(model: ResolvedModel, *, device: str = "cpu", dtype: str = "float32",
                                allow_download: bool = False, models_dir: Path | None = None) -> Any:
    """A Stable Diffusion 1.5-family text-to-image pipeline (its UNet, VAE and text encoder are what
    score distillation asks)."""
    import diffusers

    if model.kind != "sd15":
        raise ConfigError(f"score distillation needs an sd15 model, not {model.kind}", model.name)
    pipe = _from_pretrained(diffusers.StableDiffusionPipeline, model, allow_download=allow_download,
                            models_dir=models_dir, dtype=_torch_dtype(dtype), safety_checker=None,
                            requires_safety_checker=False)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
def load_ip_adapter(pipe: Any, adapter: ResolvedModel, *, scale: float = 0.6, allow_download: bool = False,
                    models_dir: Path | None = None) -> None:
    """Give ``pipe`` an IP-Adapter (its image projection, its key/value layers, its CLIP image encoder)
    so it can take a reference image; ``scale`` is how much the image counts against the prompt."""
    from generation.models.presets import IP_ADAPTER_FILES

    files = IP_ADAPTER_FILES.get(adapter.name, IP_ADAPTER_FILES["ip-adapter-sd15"])
    if adapter.local:
        weights = Path(adapter.location) / files.subfolder / files.weight_name
        if not weights.is_file():
            raise InputError(f"no IP-Adapter weights here (expected {files.subfolder}/{files.weight_name})",
                             adapter.location)
    try:
        pipe.load_ip_adapter(adapter.location, subfolder=files.subfolder, weight_name=files.weight_name,
                             image_encoder_folder=files.image_encoder,
                             local_files_only=adapter.local or not allow_download)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        if adapter.local:
            raise InputError(f"cannot load IP-Adapter {adapter.name!r} from this folder: {e}",
                             adapter.location) from None
        if not allow_download:
            raise DependencyError(
                f"IP-Adapter {adapter.name!r} is not on this machine and downloads are off: "
                f"{adapter.where_to_put(models_dir)}, or allow the download (--download)",
                adapter.name) from None
        raise DependencyError(f"could not fetch IP-Adapter {adapter.name!r} ({adapter.location}): {e}",
                              adapter.name) from None
    pipe.set_ip_adapter_scale(scale)


def reference_embeddings(pipe: Any, image: Any, guidance: bool) -> list[Any]:
    """The reference image's IP-Adapter embeddings ([unconditional, conditional] with guidance), computed
    once per clip and handed to every pipeline call (which repeats them for its batch)."""
    device = next(pipe.unet.parameters()).device
    return pipe.prepare_ip_adapter_image_embeds(ip_adapter_image=image, ip_adapter_image_embeds=None,
                                                device=device, num_images_per_prompt=1,
                                                do_classifier_free_guidance=guidance)
