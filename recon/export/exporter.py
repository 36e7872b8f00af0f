"""export(): pick the writer by file suffix; write_exports(): the exports/ folder of a capture."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from recon.export.glb import write_glb
from recon.export.mesh_data import TexturedMesh
from recon.export.obj import write_obj
from recon.export.ply import write_ply
from recon.export.presets import DEFAULT_PRESET, triangle_budget
from recon.export.texture_io import JPEG_QUALITY, check_jpeg_quality, texture_format_name
from recon.export.up_axis import check_up_axis
from recon.export.usdz import check_budget, write_usdz

FORMATS = ("usdz", "glb", "obj", "ply")


def export(mesh: TexturedMesh, path: Path, *, name: str = "Model", preset: str = DEFAULT_PRESET,
           metadata: Mapping[str, Any] | None = None, texture_format: str = "png",
           texture_quality: int = JPEG_QUALITY, up: str = "y") -> Path:
    """Write ``mesh`` to ``path`` in the format its suffix names (.usdz .glb .obj .ply).

    A .usdz also gets ``poster.png`` beside it. ``metadata`` (the model's scale status, whether
    its size is an estimate) goes into the USDZ's customLayerData and the glTF asset's extras.
    ``texture_format`` (png or jpeg, at ``texture_quality``) is the texture's encoding in USDZ,
    GLB and OBJ; ``up`` (y or z) the up axis of PLY and OBJ (USDZ and GLB are Y up by their specs).
    Returns ``path``.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    image = texture_format_name(texture_format)
    if fmt == "usdz":
        return write_usdz(mesh, path, poster=path.with_name("poster.png"), name=name, preset=preset,
                          metadata=metadata, texture_format=image, texture_quality=texture_quality)
    if fmt == "glb":
        return write_glb(mesh, path, name=name, extras=metadata, texture_format=image,
                         texture_quality=texture_quality)
    if fmt == "obj":
        return write_obj(mesh, path, name=name, up=up, texture_format=image, texture_quality=texture_quality)
    if fmt == "ply":
        return write_ply(mesh, path, up=up)
    raise ConfigError(f"unknown export format {path.suffix!r}; use one of .usdz .glb .obj .ply", path)


def write_exports(
    mesh: TexturedMesh,
    exports_dir: Path,
    *,
    formats: tuple[str, ...] = ("usdz", "glb"),
    name: str = "Model",
    preset: str = DEFAULT_PRESET,
    metadata: Mapping[str, Any] | None = None,
    texture_format: str = "png",
    texture_quality: int = JPEG_QUALITY,
    up: str = "y",
) -> dict[str, Path]:
    """Write ``exports_dir/model.<fmt>`` for each format (+ poster.png with usdz); return them by format.

    Everything is validated before the first file is written, so bad input leaves exports/ as it was.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown export formats {unknown}; known: {list(FORMATS)}", "formats")
    texture_format_name(texture_format)
    check_jpeg_quality(texture_quality)
    check_up_axis(up)
    triangle_budget(preset)
    mesh.validate()
    check_budget(mesh, preset)
    exports_dir = Path(exports_dir)
    written = {fmt: export(mesh, exports_dir / f"model.{fmt}", name=name, preset=preset, metadata=metadata,
                           texture_format=texture_format, texture_quality=texture_quality, up=up)
               for fmt in formats}
    if "usdz" in formats:
        written["poster"] = exports_dir / "poster.png"
    return written
