"""AR export: USDZ (AR Quick Look), GLB, OBJ+MTL, PLY, the poster image, and the ARKit checker.

TexturedMesh and the presets import light (numpy only); the writers load OpenUSD on first use,
so `from recon.export.presets import DETAIL_PRESETS` stays cheap for the mesh stage.
"""

from __future__ import annotations

import importlib
from typing import Any

from recon.export.mesh_data import TexturedMesh
from recon.export.presets import DETAIL_PRESETS, MAX_TEXTURE_SIZE, triangle_budget

_LAZY = {
    "CheckReport": "recon.export.check", "check_usdz": "recon.export.check",
    "FORMATS": "recon.export.exporter", "export": "recon.export.exporter",
    "write_exports": "recon.export.exporter", "write_glb": "recon.export.glb",
    "write_obj": "recon.export.obj", "write_ply": "recon.export.ply",
    "render_poster": "recon.export.poster", "write_usdz": "recon.export.usdz",
    "inspect_usdz": "recon.export.inspect",
}

__all__ = ["DETAIL_PRESETS", "MAX_TEXTURE_SIZE", "TexturedMesh", "triangle_budget", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recon.export' has no attribute {name!r}")
