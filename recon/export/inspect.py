"""Read a USDZ back: its package layout and the facts AR Quick Look depends on.

Used by check_usdz (our layout rules on top of OpenUSD's checker), by tests, and by anything that
wants to show what an export contains.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pxr import Usd, UsdGeom, UsdShade

from core.errors import InputError, NotFoundError

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header, 30 bytes


@dataclass(frozen=True)
class PackageEntry:
    name: str
    data_offset: int  # byte offset of the entry's data in the .usdz
    size: int
    stored: bool  # True when uncompressed


@dataclass(frozen=True)
class UsdzInfo:
    entries: tuple[PackageEntry, ...]
    up_axis: str
    meters_per_unit: float
    default_prim: str | None
    triangle_count: int
    extent: tuple[tuple[float, float, float], tuple[float, float, float]] | None  # of the first mesh
    texture_files: tuple[str, ...]  # asset paths used by UsdUVTexture shaders


def package_entries(path: Path) -> tuple[PackageEntry, ...]:
    """The zip entries of ``path`` in file order, with where each entry's data starts."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("no such file", path)
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
            entries = []
            for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
                raw.seek(info.header_offset)
                fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
                name_len, extra_len = fields[9], fields[10]
                offset = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
                entries.append(PackageEntry(info.filename, offset, info.file_size,
                                            info.compress_type == zipfile.ZIP_STORED))
    except zipfile.BadZipFile as e:
        raise InputError(f"not a zip/usdz package: {e}", path) from None
    return tuple(entries)


def inspect_usdz(path: Path) -> UsdzInfo:
    """Open ``path`` on a USD stage and report its layout, metadata, size and textures."""
    path = Path(path)
    entries = package_entries(path)
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise InputError("USD cannot open this package", path)
    triangles, extent, textures = 0, None, []
    for prim in stage.Traverse():
        if prim.IsA(UsdGeom.Mesh):
            mesh = UsdGeom.Mesh(prim)
            counts = mesh.GetFaceVertexCountsAttr().Get()
            triangles += sum(max(0, c - 2) for c in counts) if counts is not None else 0
            if extent is None and mesh.GetExtentAttr().HasAuthoredValue():
                lo, hi = mesh.GetExtentAttr().Get()
                extent = (tuple(float(x) for x in lo), tuple(float(x) for x in hi))
        elif prim.IsA(UsdShade.Shader) and UsdShade.Shader(prim).GetShaderId() == "UsdUVTexture":
            value = UsdShade.Shader(prim).GetInput("file").Get()
            if value is not None:
                textures.append(value.path)
    default = stage.GetDefaultPrim()
    return UsdzInfo(
        entries=entries,
        up_axis=str(UsdGeom.GetStageUpAxis(stage)),
        meters_per_unit=float(UsdGeom.GetStageMetersPerUnit(stage)),
        default_prim=str(default.GetPath()) if default else None,
        triangle_count=triangles,
        extent=extent,
        texture_files=tuple(textures),
    )


def layout_problems(entries: tuple[PackageEntry, ...]) -> list[str]:
    """What breaks AR Quick Look's package rules: usdc root layer first, stored, 64-byte aligned."""
    problems = []
    if not entries:
        return ["the package is empty"]
    if not entries[0].name.lower().endswith(".usdc"):
        problems.append(
            f"the first file is {entries[0].name!r}; AR Quick Look needs the usdc root layer first")
    for e in entries:
        if not e.stored:
            problems.append(f"{e.name!r} is compressed; usdz entries must be stored")
        if e.data_offset % 64:
            problems.append(f"{e.name!r} data starts at byte {e.data_offset}, not 64-byte aligned")
    return problems
