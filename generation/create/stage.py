"""The ``create`` stage: a prompt or one photo of the capture -> Shap-E -> (optional score-distillation
refinement) -> our mesh path. Its run folder holds what a mesh run holds (textured.npz, model.obj,
placement.json), so the ``export`` stage and the video stage read it like any textured mesh.

Models come from the workspace's model registry (generation.models); nothing is downloaded unless
``allow_download``; a model that is not on the machine is one DependencyError naming it and the
folder to put it in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.capture import CaptureFolder, Frame
from core.errors import ConfigError, InputError
from core.ports import CAPTURE_FILES, CAPTURE_FRAMES, TEXTURED_MESH
from core.resources import Resources
from core.stages import StageContext, StageSpec
from recon.export.presets import triangle_budget

MAX_PROMPT_CHARS = 1000
MAX_PHOTO_PIXELS = 50_000_000
DEFAULT_HEIGHT_M = 0.30


@dataclass(frozen=True)
class CreateConfig:
    prompt: str = ""  # text to 3D; empty: the capture's photo (``frame``, else its first photo)
    frame: str = ""  # the id of the photo to turn into 3D
    model: str = ""  # a registry name, folder or hub id; empty: shap-e (text) or shap-e-img2img (photo)
    steps: int = 64  # denoising steps of the Shap-E prior
    guidance: float = 0.0  # 0: Shap-E's own default (15 for text, 3 for a photo)
    grid_size: int = 128  # marching-cubes samples along each side of the [-1, 1] cube
    height_m: float = DEFAULT_HEIGHT_M  # how tall the model stands
    seed: int = 0
    detail: str = "medium"  # triangle budget (preview, reduced, medium, full)
    texture_size: int = 1024
    refine_steps: int = 0  # score-distillation steps after Shap-E (0: none)
    refine_model: str = "sd15"  # the Stable Diffusion model score distillation asks
    allow_download: bool = False

    def __post_init__(self) -> None:
        for name in ("prompt", "frame", "model", "refine_model"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"expected text, got {getattr(self, name)!r}", f"create.{name}")
        if len(self.prompt) > MAX_PROMPT_CHARS or "\x00" in self.prompt:
            raise ConfigError(f"must be at most {MAX_PROMPT_CHARS} characters of text", "create.prompt")
        _whole(self.steps, 1, 1000, "create.steps")
        _whole(self.grid_size, 16, 512, "create.grid_size")
        _whole(self.seed, 0, 2**32 - 1, "create.seed")
        _whole(self.texture_size, 64, 8192, "create.texture_size")
        _whole(self.refine_steps, 0, 100_000, "create.refine_steps")
        _number(self.guidance, 0.0, 100.0, "create.guidance")
        _number(self.height_m, 1e-3, 100.0, "create.height_m")
        if self.height_m <= 0:
            raise ConfigError("must be above 0", "create.height_m")
        triangle_budget(self.detail)
        if not isinstance(self.allow_download, bool):
            raise ConfigError("expected true or false", "create.allow_download")


def _whole(value: Any, lo: int, hi: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"expected a whole number from {lo} to {hi}, got {value!r}", where)


def _number(value: Any, lo: float, hi: float, where: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if not ok or (isinstance(value, float) and not math.isfinite(value)) or not lo <= value <= hi:
        raise ConfigError(f"expected a number from {lo:g} to {hi:g}, got {value!r}", where)


def source_photo(capture: CaptureFolder, frame_id: str) -> Frame:
    """The frame whose photo becomes 3D: ``frame_id``, else the capture's first photo."""
    frames = [f for f in capture.load().frames if f.image]
    if frame_id:
        frames = [f for f in frames if f.id == frame_id]
        if not frames:
            raise InputError("the capture has no photo with this frame id", f"create.frame={frame_id}")
    if not frames:
        raise ConfigError("give a prompt, or a capture with a photo to turn into 3D", "create.prompt")
    return frames[0]


def read_photo(capture: CaptureFolder, frame: Frame) -> Any:
    from PIL import Image, UnidentifiedImageError

    assert frame.image is not None
    path = capture.path(frame.image)
    Image.MAX_IMAGE_PIXELS = MAX_PHOTO_PIXELS
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PHOTO_PIXELS:
                raise InputError(f"the photo is too large ({img.width}x{img.height})", path)
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise InputError(f"not a readable photo: {e}", path) from None


def run(ctx: StageContext, config: CreateConfig) -> dict[str, Any]:
    from generation.create.mesh_path import finish_mesh
    from generation.create.shap_e import latent_mesh, shap_e_latent
    from generation.models.loader import load_shap_e_pipeline
    from generation.restyle.stage import licence_ledger, model_registry

    text = config.prompt.strip()
    if config.refine_steps and not text:
        raise ConfigError("score distillation refines against a prompt: give one, or no refine steps",
                          "create.refine_steps")
    photo_frame = None if text else source_photo(ctx.capture, config.frame)
    kind = "shap-e" if text else "shap-e-img2img"
    registry = model_registry(ctx.capture, config.allow_download)
    model = registry.resolve(config.model or kind, kind)
    for notice in licence_ledger(ctx.capture).notices_to_show([model]):
        ctx.progress.log(notice)
    device = ctx.device if ctx.device.startswith("cuda") else "cpu"
    dtype = "float16" if device.startswith("cuda") else "float32"
    ctx.progress.update(0.02, f"loading {model.name} on {device}")
    pipe = load_shap_e_pipeline(model, device=device, dtype=dtype, allow_download=config.allow_download,
                                models_dir=registry.models_dir)
    progress = ctx.progress.sub(0.05, 0.45)

    def on_step(i: int, n: int) -> None:
        ctx.cancel.check()
        progress.update(i / max(n, 1), f"Shap-E step {i + 1}/{n}")

    guidance = config.guidance or None
    if text:
        latent = shap_e_latent(pipe, prompt=text, steps=config.steps, guidance=guidance, seed=config.seed,
                               on_step=on_step)
    else:
        assert photo_frame is not None
        image = read_photo(ctx.capture, photo_frame)
        latent = shap_e_latent(pipe, image=image, steps=config.steps, guidance=guidance, seed=config.seed,
                               on_step=on_step)
    ctx.cancel.check()
    ctx.progress.update(0.45, f"decoding the shape on a {config.grid_size}^3 grid")
    raw = latent_mesh(pipe.shap_e_renderer, latent, config.grid_size, device)
    ctx.progress.log(f"Shap-E shape: {raw.n_faces} triangles")
    refined: dict[str, Any] = {}
    if config.refine_steps:
        from generation.create.sds import refine_mesh

        raw, refined = refine_mesh(raw, text or "", config, registry, device=device,
                                   progress=ctx.progress.sub(0.5, 0.75), cancel=ctx.cancel)
    result = finish_mesh(raw, ctx.out_dir, height_m=float(config.height_m), detail=config.detail,
                         texture_size=config.texture_size, name=ctx.capture.load().name,
                         progress=ctx.progress.sub(0.75, 1.0), cancel=ctx.cancel)
    return {"mode": "text" if text else "image", "prompt": text, "model": model.name,
            "licence": model.licence, "frame": photo_frame.id if photo_frame else None,
            "device": device, **({"refine": refined} if refined else {}), **result}


STAGE = StageSpec(
    name="create", config_cls=CreateConfig, run=run, version=1,
    reads=(), writes=(TEXTURED_MESH,), capture_reads=(CAPTURE_FRAMES, CAPTURE_FILES),
    resources=Resources(gpu=True, gpu_memory_gb=6),
    description="text or one photo to a textured model: Shap-E, optional score distillation, "
                "then clean, UV, bake, placed y-up on the ground at the height asked for",
)
