"""Detail presets (image size, splat cap, steps) and the CPU time estimate that refuses a run
which would take hours. The cost model is a rough fit to the plain-torch rasterizer on one
loaded CPU core (about 0.15 s per step for 1,200 pixels and 1,500 splats)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError

SECONDS_PER_PIXEL_STEP = 1.0e-4  # at REFERENCE_SPLATS splats
REFERENCE_SPLATS = 2000
CPU_LIMIT_S = 2 * 3600.0  # longer runs are refused on a CPU


@dataclass(frozen=True)
class Preset:
    max_side: int  # the longer image side, in pixels
    max_splats: int
    steps: int


PRESETS: dict[str, Preset] = {
    "preview": Preset(max_side=64, max_splats=3000, steps=300),
    "medium": Preset(max_side=320, max_splats=50_000, steps=7000),
    "full": Preset(max_side=1600, max_splats=1_000_000, steps=30_000),
}


def preset(detail: str) -> Preset:
    if detail not in PRESETS:
        raise ConfigError(f"expected one of {', '.join(PRESETS)}, got {detail!r}", "splat.detail")
    return PRESETS[detail]


def cpu_seconds(pixels_per_view: int, splats: int, steps: int) -> float:
    """Expected training time on a CPU."""
    return steps * pixels_per_view * SECONDS_PER_PIXEL_STEP * max(1.0, splats / REFERENCE_SPLATS) ** 0.5


def _pixels(max_side: int, aspect: float) -> int:
    return int(max_side * max_side / max(aspect, 1.0 / aspect))


def human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def expected(detail: str, device: str, aspect: float = 4 / 3) -> str:
    """A line saying what a run at ``detail`` is expected to take on ``device``; ConfigError
    where a CPU run would be refused (the time and the preset that fits)."""
    chosen = preset(detail)
    if device == "cpu":
        seconds = refuse_if_too_slow(detail, chosen, aspect)
        return (f"about {human(seconds)} on this machine's CPU ({chosen.steps} steps, at most "
                f"{chosen.max_splats} splats, photos at {chosen.max_side} px)")
    return (f"{chosen.steps} steps, at most {chosen.max_splats} splats, photos at {chosen.max_side} px "
            f"on the {device} GPU (GPU time is not estimated yet)")


def refuse_if_too_slow(detail: str, chosen: Preset, aspect: float) -> float:
    """Expected CPU seconds for ``chosen``; ConfigError naming the time and the preset that fits."""
    expected = cpu_seconds(_pixels(chosen.max_side, aspect), chosen.max_splats, chosen.steps)
    if expected <= CPU_LIMIT_S:
        return expected
    fits = [name for name, p in PRESETS.items()
            if cpu_seconds(_pixels(p.max_side, aspect), p.max_splats, p.steps) <= CPU_LIMIT_S]
    hint = "no preset fits"
    if fits:
        best = PRESETS[fits[-1]]
        best_s = cpu_seconds(_pixels(best.max_side, aspect), best.max_splats, best.steps)
        hint = f"--detail {fits[-1]} (about {human(best_s)}) fits"
    raise ConfigError(f"splatting at '{detail}' detail on this CPU would take about {human(expected)} "
                      f"(no CUDA GPU here); {hint}, or run it on a machine with an NVIDIA GPU",
                      "splat.detail")
