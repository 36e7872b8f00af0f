"""Detail presets for the surface stage and the guard against runs far too long for the device.

Times are estimated from the work per step (rays x samples x network evaluations) at a device
throughput measured on a small CPU and an estimate for CUDA; they are rough by design: they say
whether a run takes minutes or hours, so nothing silently runs for hours.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError

DETAILS = ("preview", "medium", "full")
# Field evaluations (points through the hash grid and both networks, forward and backward) per
# second; CPU measured with the torch hash encoding on 2 busy cores (about 3.5e3; an idle desktop
# CPU does several times that), CUDA a conservative guess for tcnn.
POINTS_PER_SECOND = {"cpu": 1.0e4, "mps": 1.0e5, "cuda": 2.0e7}
MAX_CPU_SECONDS = 45 * 60  # a run expected to take longer than this on a CPU is refused


@dataclass(frozen=True)
class SurfacePreset:
    steps: int
    rays_per_batch: int
    coarse_samples: int  # uniform samples per ray (evaluated without gradients, to place the fine ones)
    fine_samples: int  # extra samples per ray where the coarse pass sees the surface
    levels: int  # hash-grid levels
    max_resolution: int  # finest level's cells across the unit cube
    log2_table_size: int
    image_max_side: int  # training images are downscaled to at most this many pixels per side
    mesh_resolution: int  # marching-cubes cells along the longest side of the object's box

    def points_per_step(self) -> int:
        render = self.rays_per_batch * (self.coarse_samples + self.fine_samples + 1)
        coarse = self.rays_per_batch * self.coarse_samples // 3  # no backward pass
        regularised = 7 * (self.rays_per_batch + self.rays_per_batch // 2)  # 6 taps + centre
        return render + coarse + regularised


PRESETS = {
    "preview": SurfacePreset(steps=600, rays_per_batch=256, coarse_samples=24, fine_samples=8, levels=8,
                             max_resolution=256, log2_table_size=16, image_max_side=160, mesh_resolution=128),
    "medium": SurfacePreset(steps=3000, rays_per_batch=1024, coarse_samples=48, fine_samples=16, levels=12,
                            max_resolution=1024, log2_table_size=18, image_max_side=480, mesh_resolution=256),
    "full": SurfacePreset(steps=20000, rays_per_batch=2048, coarse_samples=64, fine_samples=32, levels=16,
                          max_resolution=2048, log2_table_size=19, image_max_side=1024, mesh_resolution=512),
}


def preset(detail: str) -> SurfacePreset:
    try:
        return PRESETS[detail]
    except KeyError:
        raise ConfigError(f"must be one of {', '.join(DETAILS)}, got {detail!r}", "surface.detail") from None


def device_kind(device: str) -> str:
    """``cuda``, ``mps`` or ``cpu`` for a torch device string."""
    return device.split(":")[0] if device.split(":")[0] in POINTS_PER_SECOND else "cpu"


def expected_seconds(p: SurfacePreset, device: str, steps: int | None = None) -> float:
    steps = steps if steps is not None else p.steps
    return steps * p.points_per_step() / POINTS_PER_SECOND[device_kind(device)]


def describe_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def check_fits(detail: str, device: str, steps: int | None = None) -> float:
    """The expected seconds of a run; ConfigError when a CPU run would take too long, naming
    the expected time and the largest preset that fits."""
    p = preset(detail)
    seconds = expected_seconds(p, device, steps)
    if device_kind(device) != "cpu" or seconds <= MAX_CPU_SECONDS:
        return seconds
    fitting = [d for d in DETAILS if expected_seconds(PRESETS[d], device) <= MAX_CPU_SECONDS]
    if fitting:
        fits = describe_seconds(expected_seconds(PRESETS[fitting[-1]], device))
        advice = f"use --detail {fitting[-1]} (about {fits})"
    else:
        advice = "use fewer steps"
    raise ConfigError(
        f"a {detail} neural surface would take about {describe_seconds(seconds)} on this machine's CPU "
        f"(no CUDA GPU found); {advice}, or run it on a machine with an NVIDIA GPU",
        "surface.detail",
    )
