"""AR detail presets: how many triangles a published model may have, and its texture limit.

The mesh stage decimates to one of these budgets; the exporters refuse a mesh over its budget.
"""

from __future__ import annotations

from core.errors import ConfigError

# Triangle budget per detail preset (AR Quick Look stays smooth on phones within these).
DETAIL_PRESETS: dict[str, int] = {
    "preview": 25_000,
    "reduced": 50_000,
    "medium": 100_000,
    "full": 250_000,
}
DEFAULT_PRESET = "full"

# Largest texture edge written into a USDZ; bigger textures are downscaled on export.
MAX_TEXTURE_SIZE = 2048


def triangle_budget(preset: str) -> int:
    """The triangle budget of ``preset``; ConfigError naming it when it is unknown."""
    try:
        return DETAIL_PRESETS[preset]
    except KeyError:
        known = ", ".join(DETAIL_PRESETS)
        raise ConfigError(f"unknown detail preset {preset!r} (known: {known})", "preset") from None
