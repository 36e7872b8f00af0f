"""The ``restyle`` pipeline stage: a capture's frames restyled by a diffusion model into an MP4 and PNGs.

Writes ``frames/<frame id>.png`` and ``restyle.mp4`` in its run folder, and reports the warped error
between consecutive output frames (and of the input photos, for scale) as its consistency figure.
Models are resolved through generation.models for the capture's workspace (its settings.json
``model_paths`` and its models/ folder); nothing is downloaded unless ``allow_download``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder
from core.errors import ConfigError, InputError
from core.settings import load_settings
from core.source_paths import inside_root
from core.stages import StageContext, StageSpec
from generation.models.presets import DEPTH_ESTIMATOR, EDGE_CONTROLNET_FOR, IP_ADAPTER_FOR, MODELS, PRESETS
from generation.models.registry import LEDGER_NAME, LicenceLedger, ModelRegistry, ResolvedModel
from generation.restyle.engine import RestyleSettings


@dataclass(frozen=True)
class RestyleConfig:
    prompt: str = ""
    negative_prompt: str = ""
    mode: str = "stylize"  # stylize | mask | render | storyboard
    preset: str = "sd15-depth"
    base: str = ""  # a model name, folder or hub id instead of the preset's base model
    controlnet: str = ""  # likewise for its depth ControlNet
    lora: str = ""  # "" the preset's, "none" for no LoRA
    fidelity: float = 0.7
    strength: float = 0.75
    steps: int = 0  # 0: the preset's
    guidance: float = -1.0  # below 0: the preset's
    seed: int = 0
    size: int = 0  # long side of a frame in pixels; 0: the preset's
    keyframe_every: int = 4
    cross_frame: bool = True
    max_frames: int = 0  # 0: all
    stride: int = 1
    mesh: str = ""  # a mesh PLY inside the capture, rendered for depth where frames have no depth map
    depth_estimator: str = DEPTH_ESTIMATOR  # for frames with neither a depth map nor a mesh
    fps: float = 12.0
    image: str = ""  # a reference image inside the capture (references/...): its look, through an IP-Adapter
    image_scale: float = 0.6  # how much the reference image counts against the prompt, 0..2
    ip_adapter: str = ""  # "" the base family's IP-Adapter (ip-adapter-sd15 / ip-adapter-sdxl)
    allow_download: bool = False
    allow_cpu: bool = False


def workspace_root(capture: CaptureFolder) -> Path:
    return capture.root.parent.parent


def model_registry(capture: CaptureFolder, allow_download: bool) -> ModelRegistry:
    root = workspace_root(capture)
    settings = load_settings(root / "settings.json")
    return ModelRegistry(root / "models", settings.model_paths, allow_download=allow_download)


def licence_ledger(capture: CaptureFolder) -> LicenceLedger:
    return LicenceLedger(workspace_root(capture) / "models" / LEDGER_NAME)


def resolve_models(config: RestyleConfig, registry: ModelRegistry) -> dict[str, ResolvedModel]:
    """The base, controlnet and (optional) lora models the config asks for."""
    preset = PRESETS.get(config.preset)
    if preset is None:
        raise ConfigError(f"unknown preset (known: {', '.join(PRESETS)})", "preset")
    base = registry.resolve(config.base or preset.base, MODELS[preset.base].kind)
    family = "sdxl" if base.kind == "sdxl" else "sd15"
    default_net = EDGE_CONTROLNET_FOR[family] if config.mode == "storyboard" else preset.controlnet
    models = {"base": base, "controlnet": registry.resolve(config.controlnet or default_net, "controlnet")}
    lora = preset.lora if config.lora == "" else (None if config.lora == "none" else config.lora)
    if lora:
        models["lora"] = registry.resolve(lora, "lora")
    if config.image:
        models["ip_adapter"] = registry.resolve(config.ip_adapter or IP_ADAPTER_FOR[family], "ip-adapter")
    return models


def _check_whole(config: RestyleConfig, name: str, lo: int, hi: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"must be a whole number from {lo} to {hi}, got {value!r}", name)


def engine_settings(config: RestyleConfig) -> RestyleSettings:
    """The engine's settings from a stage config (which may come from anywhere: every field is checked)."""
    texts = ("prompt", "negative_prompt", "preset", "base", "controlnet", "lora", "mesh", "depth_estimator",
             "image", "ip_adapter")
    for name in texts:
        if not isinstance(getattr(config, name), str) or len(getattr(config, name)) > 2000:
            raise ConfigError("must be text of at most 2000 characters", name)
    if config.preset not in PRESETS:
        raise ConfigError(f"unknown preset (known: {', '.join(PRESETS)})", "preset")
    preset = PRESETS[config.preset]
    if not config.prompt.strip():
        raise ConfigError("a text prompt is needed", "prompt")
    for name, lo, hi in (("seed", 0, 2**63 - 1), ("max_frames", 0, 100_000), ("stride", 1, 1000),
                         ("steps", 0, 200), ("size", 0, 2048)):
        _check_whole(config, name, lo, hi)
    for name in ("fidelity", "strength", "guidance", "fps", "image_scale"):
        if isinstance(getattr(config, name), bool) or not isinstance(getattr(config, name), (int, float)):
            raise ConfigError(f"must be a number, got {getattr(config, name)!r}", name)
    if not 0.5 <= config.fps <= 120:
        raise ConfigError(f"must be from 0.5 to 120, got {config.fps}", "fps")
    if not 0.0 <= config.image_scale <= 2.0:
        raise ConfigError(f"must be from 0 to 2, got {config.image_scale}", "image_scale")
    for name in ("cross_frame", "allow_download", "allow_cpu"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"must be true or false, got {getattr(config, name)!r}", name)
    settings = RestyleSettings(
        prompt=config.prompt, negative_prompt=config.negative_prompt, mode=config.mode,
        fidelity=config.fidelity, strength=config.strength, steps=config.steps or preset.steps,
        guidance=preset.guidance if config.guidance < 0 else config.guidance, seed=config.seed,
        keyframe_every=config.keyframe_every, cross_frame=config.cross_frame,
    )
    settings.check()
    return settings


def run_restyle(ctx: StageContext, config: RestyleConfig) -> dict[str, Any]:
    from dataclasses import replace

    from generation.restyle.engine import restyle_frames
    from generation.restyle.frames import load_frames
    from generation.restyle.resume import KeyframeSaver, load_keyframes
    from generation.restyle.video import write_frames, write_mp4
    from generation.restyle.warp import warped_error

    settings = engine_settings(config)
    preset = PRESETS[config.preset]
    size = config.size or preset.size
    if size < 8:
        raise ConfigError(f"must be from 8 to 2048 pixels, got {size!r}", "size")
    mesh = None
    if config.mesh:
        mesh = inside_root(ctx.capture.root, config.mesh, "mesh")
        if not mesh.is_file():
            raise InputError("no such mesh in the capture", config.mesh)
    reference = read_reference(ctx.capture, config.image) if config.image else None
    registry = model_registry(ctx.capture, config.allow_download)
    models = resolve_models(config, registry)
    for line in licence_ledger(ctx.capture).notices_to_show(models.values()):
        ctx.progress.warning(line)
    ctx.progress.update(0.0, "reading frames")
    frames = load_frames(ctx.capture, size, max_frames=config.max_frames, stride=config.stride, mesh=mesh)
    if settings.mode == "render" and any(f.depth is None for f in frames):
        raise ConfigError("render mode draws from the capture's geometry: it needs depth maps on every "
                          "frame, or a mesh (--mesh) to render them from", "mode")
    frames, estimated = _estimate_missing_depth(ctx, config, registry, frames)
    ctx.cancel.check()
    keyframes = -(-len(frames) // settings.keyframe_every)
    pipe, runtime = load_for_stage(ctx, config, models, registry, settings, size, keyframes)
    settings = replace(settings, batch=runtime.batch)
    ctx.cancel.check()
    frame_ids = [f.frame_id for f in frames]
    done = load_keyframes(ctx.checkpoints, frame_ids)
    if done:
        ctx.progress.log(f"resuming: {len(done)} keyframe(s) were finished before")
    saver = KeyframeSaver(ctx.checkpoints, frame_ids) if ctx.checkpoints is not None else None
    result = restyle_frames(pipe, frames, settings, reference=reference, done=done, on_keyframes=saver,
                            progress=ctx.progress.sub(0.1, 0.95), cancel=ctx.cancel)
    write_frames(result.frames, ctx.out_dir / "frames", [f.frame_id for f in frames])
    write_mp4(result.frames, ctx.out_dir / "restyle.mp4", fps=config.fps)
    views = [f.view for f in frames]
    consistency: dict[str, float] = {}
    if len(frames) > 1 and all(v is not None for v in views):
        try:
            consistency = {"warped_error": warped_error(result.frames, views),
                           "input_warped_error": warped_error([f.rgb for f in frames], views)}
        except ValueError:
            pass  # no consecutive frames overlap
    h, w = frames[0].rgb.shape[:2]
    return {
        "video": "restyle.mp4", "frames": len(frames), "keyframes": result.keyframes, "size": [w, h],
        "mode": settings.mode, "runtime": runtime.why, "inpainted_fraction": result.inpainted_fraction,
        "models": {k: m.location for k, m in models.items()}, "estimated_depth": estimated, **consistency,
    }


def load_for_stage(ctx: StageContext, config: RestyleConfig, models: dict[str, ResolvedModel],
                   registry: ModelRegistry, settings: RestyleSettings, size: int,
                   keyframes: int) -> tuple[Any, Any]:
    """(the mode's pipeline, the runtime settings) on this machine; a full-size model on a CPU is
    refused with the expected time unless allowed."""
    from generation.models.loader import (
        load_ip_adapter,
        load_restyle_pipeline,
        mode_pipeline,
        unet_parameters,
    )
    from generation.models.runtime import choose_runtime, free_gpu_bytes, refuse_full_size_on_cpu

    preset = PRESETS[config.preset]
    family = "sdxl" if models["base"].kind == "sdxl" else "sd15"
    runtime = choose_runtime(family, free_gpu_bytes(), size)
    ctx.progress.log(f"runtime: {runtime.why}")
    ctx.progress.update(0.02, "loading models")
    pipe = load_restyle_pipeline(models["base"], models["controlnet"], runtime, lora=models.get("lora"),
                                 scheduler=preset.scheduler, allow_download=config.allow_download,
                                 models_dir=registry.models_dir)
    if "ip_adapter" in models:
        load_ip_adapter(pipe, models["ip_adapter"], scale=config.image_scale,
                        allow_download=config.allow_download, models_dir=registry.models_dir)
    refuse_full_size_on_cpu(runtime, family, unet_parameters(pipe), size=size,
                            steps=max(1, int(settings.steps * settings.strength)), frames=keyframes,
                            allow_cpu=config.allow_cpu)
    return mode_pipeline(pipe, family, settings.mode), runtime


REFERENCE_DIR = "references"
REFERENCE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def read_reference(capture: CaptureFolder, name: str) -> Any:
    """The reference image ``name`` (a file inside the capture) as (H, W, 3) uint8 RGB."""
    from recon.fusion.frames import read_color

    path = inside_root(capture.root, name, "image")
    if path.suffix.lower() not in REFERENCE_SUFFIXES:
        raise ConfigError(f"a reference image must be one of {', '.join(REFERENCE_SUFFIXES)}", name)
    if not path.is_file():
        raise InputError("no such reference image in the capture", name)
    return read_color(path)


def store_reference(capture: CaptureFolder, source: Path) -> str:
    """Copy the user's reference image into the capture (references/<content hash><suffix>, published
    atomically) after checking it decodes; returns its name relative to the capture."""
    from core.fsio import atomic_copy, file_sha256
    from recon.fusion.frames import read_color

    source = Path(source)
    if source.suffix.lower() not in REFERENCE_SUFFIXES or not source.is_file():
        raise InputError(f"expected an image file ({', '.join(REFERENCE_SUFFIXES)})", source)
    read_color(source)  # an InputError naming the file when it does not decode
    name = f"{REFERENCE_DIR}/{file_sha256(source)[:16]}{source.suffix.lower()}"
    if not (capture.root / name).is_file():
        atomic_copy(source, capture.root / name)
    return name


def _estimate_missing_depth(ctx: StageContext, config: RestyleConfig, registry: ModelRegistry,
                            frames: list) -> tuple[list, int]:
    """Frames without depth get the depth estimator's relative depth as their hint; (frames, how many)."""
    from dataclasses import replace

    from generation.models.loader import load_depth_estimator
    from generation.models.runtime import free_gpu_bytes
    from generation.restyle.frames import estimate_disparity

    missing = [i for i, f in enumerate(frames) if f.depth is None]
    if not missing:
        return frames, 0
    model = registry.resolve(config.depth_estimator, "depth-estimator")
    for line in licence_ledger(ctx.capture).notices_to_show([model]):
        ctx.progress.warning(line)
    ctx.progress.log(f"{len(missing)} frame(s) have no depth map or mesh: estimating it with {model.name}")
    device = "cpu" if free_gpu_bytes() is None else "cuda"
    processor, net = load_depth_estimator(model, device=device, allow_download=config.allow_download,
                                          models_dir=registry.models_dir)
    frames = list(frames)
    for i in missing:
        ctx.cancel.check()
        frames[i] = replace(frames[i], disparity=estimate_disparity(processor, net, frames[i].rgb))
    return frames, len(missing)


STAGE = StageSpec(
    name="restyle", config_cls=RestyleConfig, run=run_restyle, version=1, resumable=True,
    description="restyle a capture's frames with a depth-ControlNet diffusion model into an MP4",
)
