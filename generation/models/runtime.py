"""How to run a diffusion model on this machine: device, precision and memory levers chosen from
free GPU memory, and a clear refusal (with the expected time) for a full-size run on a CPU."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import DependencyError

GB = 1024**3
# fp16 weights (UNet + ControlNet + text encoders + VAE) and the activations of one keyframe at the
# family's native size with classifier-free guidance; from the model sizes and diffusers' reported use.
WEIGHTS_GB = {"sd15": 2.8, "sdxl": 9.5}
ACTIVATIONS_GB = {"sd15": 1.0, "sdxl": 3.5}
NATIVE_SIZE = {"sd15": 512, "sdxl": 1024}
HEADROOM_GB = 0.75
# Reported CPU speed of one denoising step (UNet + ControlNet, with guidance) at the native size on a
# recent 8-core desktop CPU in float32; only for the refusal's time estimate.
CPU_SECONDS_PER_STEP = {"sd15": 8.0, "sdxl": 45.0}
FULL_SIZE_UNET_PARAMS = 100_000_000  # below this a model is a test or distilled toy, fine on a CPU


@dataclass(frozen=True)
class RuntimeSettings:
    device: str  # "cpu" or "cuda" / "cuda:N"
    dtype: str  # "float16" or "float32"
    attention_slicing: bool = False
    cpu_offload: bool = False  # accelerate's model offload: one sub-model on the GPU at a time
    vae_tiling: bool = False
    batch: int = 1  # keyframes denoised together (cross-frame attention sees them all)
    why: str = ""


def free_gpu_bytes(device: str = "cuda") -> int | None:
    """Free memory of the GPU, or None when there is no CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def choose_runtime(family: str, free_bytes: int | None, size: int, *, device: str = "cuda",
                   max_batch: int = 4) -> RuntimeSettings:
    """Settings for ``family`` ("sd15" or "sdxl") at keyframes of long side ``size``.

    No GPU: float32 on the CPU. Otherwise float16, with as many keyframes per batch as fit; then
    attention slicing; then model CPU offload and VAE tiling; and a DependencyError below that.
    """
    if family not in WEIGHTS_GB:
        raise ValueError(f"unknown model family {family!r}")
    if free_bytes is None:
        return RuntimeSettings("cpu", "float32", batch=1, why="no CUDA GPU: float32 on the CPU")
    free_gb = free_bytes / GB
    per_frame = ACTIVATIONS_GB[family] * (size / NATIVE_SIZE[family]) ** 2
    weights = WEIGHTS_GB[family]
    room = free_gb - weights - HEADROOM_GB
    if room >= per_frame:
        batch = int(max(1, min(max_batch, room // per_frame)))
        return RuntimeSettings(device, "float16", batch=batch,
                               why=f"{free_gb:.1f} GB free: float16, {batch} keyframe(s) per batch")
    if room >= per_frame * 0.5:
        return RuntimeSettings(device, "float16", attention_slicing=True, batch=1,
                               why=f"{free_gb:.1f} GB free: float16 with attention slicing")
    if free_gb >= weights * 0.5 + per_frame * 0.5 + HEADROOM_GB:
        return RuntimeSettings(device, "float16", attention_slicing=True, cpu_offload=True, vae_tiling=True,
                               batch=1, why=f"{free_gb:.1f} GB free: float16, model CPU offload, VAE tiling")
    need = weights * 0.5 + per_frame * 0.5 + HEADROOM_GB
    raise DependencyError(
        f"not enough free GPU memory for {family} at {size}px: {free_gb:.1f} GB free, at least "
        f"{need:.1f} GB needed (close other GPU programs or choose a smaller size)", device)


def expected_cpu_seconds(family: str, size: int, steps: int, frames: int) -> float:
    return CPU_SECONDS_PER_STEP[family] * (size / NATIVE_SIZE[family]) ** 2 * steps * frames


def refuse_full_size_on_cpu(runtime: RuntimeSettings, family: str, unet_params: int, *, size: int,
                            steps: int, frames: int, allow_cpu: bool) -> None:
    """Raise a DependencyError saying the expected time when a full-size model would run on a CPU."""
    if runtime.device != "cpu" or unet_params < FULL_SIZE_UNET_PARAMS or allow_cpu:
        return
    seconds = expected_cpu_seconds(family, size, steps, frames)
    raise DependencyError(
        f"no CUDA GPU: restyling {frames} keyframe(s) at {size}px with {steps} steps on the CPU would "
        f"take about {seconds / 60:.0f} minutes ({seconds / max(frames, 1):.0f} s per keyframe); "
        "use a machine with an NVIDIA GPU, or allow the CPU run explicitly (--allow-cpu)", "device")
