"""USDZ for AR Quick Look: a usdc layer (Y up, metres) with a UsdPreviewSurface material and its
baked texture, packaged root-layer-first with 64-byte aligned, uncompressed entries."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pxr import Kind, Sdf, Tf, Usd, UsdGeom, UsdShade, Vt

from core.errors import ConfigError, InputError
from core.fsio import atomic_copy, atomic_write_bytes
from recon.export.mesh_data import TexturedMesh
from recon.export.poster import render_poster_png
from recon.export.presets import DEFAULT_PRESET, MAX_TEXTURE_SIZE, triangle_budget
from recon.export.texture_io import JPEG_QUALITY, encode_texture, fit_texture, texture_format_name

TEXTURE_DIR = "textures"
METADATA_KEY = "scanbridge"  # customLayerData["scanbridge"]: what we know about the model


def _usd_dict(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` with values USD can store in a dictionary (bool, int, float, str, nested)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, Mapping):
            out[str(key)] = _usd_dict(value)
        elif isinstance(value, (bool, int, float, str)):
            out[str(key)] = value
        elif value is not None:
            out[str(key)] = str(value)
    return out


def check_budget(mesh: TexturedMesh, preset: str) -> None:
    """InputError naming mesh.faces when the mesh has more triangles than ``preset`` allows."""
    budget = triangle_budget(preset)
    if mesh.face_count > budget:
        raise InputError(
            f"{mesh.face_count} triangles is over the {preset!r} preset's budget of {budget}; "
            "decimate the mesh first or pick a larger preset", "mesh.faces")


def usd_identifier(name: str) -> str:
    """A prim/file name for ``name``: letters, digits and underscores, not starting with a digit."""
    ident = Tf.MakeValidIdentifier(name.strip() or "Model")
    return ident if ident.strip("_") else "Model"


def write_usdz(
    mesh: TexturedMesh,
    path: Path,
    *,
    poster: Path | None = None,
    name: str = "Model",
    preset: str = DEFAULT_PRESET,
    texture_format: str = "png",
    texture_quality: int = JPEG_QUALITY,
    max_texture_size: int = MAX_TEXTURE_SIZE,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``mesh`` as an AR Quick Look USDZ at ``path`` and return ``path``.

    metadata: JSON-like facts about the model (its scale status, whether its size is an
    estimate) stored in the root layer's customLayerData under "scanbridge".

    poster: where to write a PNG render of the mesh from a 3/4 view (the share page shows it),
    or None for no poster. Both files are published atomically, the USDZ first; on bad input
    (InputError/ConfigError naming the field) nothing is written.
    """
    path = Path(path)
    if path.suffix.lower() != ".usdz":
        raise ConfigError(f"a USDZ file name must end in .usdz, got {path.name!r}", "path")
    texture_format = texture_format_name(texture_format)
    mesh.validate()
    check_budget(mesh, preset)
    ident = usd_identifier(name)
    texture = fit_texture(mesh.texture, max_texture_size)
    texture_bytes = encode_texture(texture, texture_format, texture_quality)
    poster_bytes = render_poster_png(mesh) if poster is not None else None

    with tempfile.TemporaryDirectory(prefix="scanbridge-usdz-") as tmp:
        tmp_dir = Path(tmp)
        layer_name = f"{ident}.usdc"
        texture_name = f"{TEXTURE_DIR}/{ident}_basecolor.{texture_format}"
        (tmp_dir / TEXTURE_DIR).mkdir()
        (tmp_dir / texture_name).write_bytes(texture_bytes)
        _write_layer(mesh, tmp_dir / layer_name, ident, texture_name, metadata)

        package = tmp_dir / "package.usdz"
        writer = Sdf.ZipFileWriter.CreateNew(str(package))
        # The root layer must be the first entry; the writer aligns every entry to 64 bytes.
        writer.AddFile(str(tmp_dir / layer_name), layer_name)
        writer.AddFile(str(tmp_dir / texture_name), texture_name)
        writer.Save()
        atomic_copy(package, path)
    if poster_bytes is not None and poster is not None:
        atomic_write_bytes(Path(poster), poster_bytes)
    return path


def _write_layer(mesh: TexturedMesh, layer_path: Path, ident: str, texture_name: str,
                 metadata: Mapping[str, Any] | None = None) -> None:
    stage = Usd.Stage.CreateNew(str(layer_path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, UsdGeom.LinearUnits.meters)
    if metadata:
        stage.GetRootLayer().customLayerData = {METADATA_KEY: _usd_dict(metadata)}

    root = UsdGeom.Xform.Define(stage, f"/{ident}")
    stage.SetDefaultPrim(root.GetPrim())
    Usd.ModelAPI(root.GetPrim()).SetKind(Kind.Tokens.component)
    UsdGeom.Scope.Define(stage, f"/{ident}/Geom")
    usd_mesh = _define_mesh(stage, f"/{ident}/Geom/{ident}_mesh", mesh)
    material = _define_material(stage, f"/{ident}/Materials/{ident}_material", texture_name)
    UsdShade.MaterialBindingAPI.Apply(usd_mesh.GetPrim()).Bind(material)
    stage.GetRootLayer().Save()


def _define_mesh(stage: Usd.Stage, prim_path: str, mesh: TexturedMesh) -> UsdGeom.Mesh:
    usd_mesh = UsdGeom.Mesh.Define(stage, prim_path)
    points = mesh.vertices  # (N, 3) float32
    usd_mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
    usd_mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(mesh.face_count, 3, np.int32)))
    usd_mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(mesh.faces.reshape(-1)))
    usd_mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(mesh.vertex_normals()))
    usd_mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
    usd_mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    usd_mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    lo, hi = points.min(axis=0), points.max(axis=0)
    usd_mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([lo, hi]).astype(np.float32)))

    assert mesh.uvs is not None
    interpolation = UsdGeom.Tokens.faceVarying if mesh.uvs_per_corner else UsdGeom.Tokens.vertex
    st = UsdGeom.PrimvarsAPI(usd_mesh).CreatePrimvar(
        "st", Sdf.ValueTypeNames.TexCoord2fArray, interpolation)
    # faceVarying values follow faceVertexIndices order: corner k of face m is row 3m + k.
    st.Set(Vt.Vec2fArray.FromNumpy(np.ascontiguousarray(mesh.uvs.reshape(-1, 2))))
    return usd_mesh


def _define_material(stage: Usd.Stage, prim_path: str, texture_name: str) -> UsdShade.Material:
    material = UsdShade.Material.Define(stage, prim_path)

    surface = UsdShade.Shader.Define(stage, f"{prim_path}/PreviewSurface")
    surface.CreateIdAttr("UsdPreviewSurface")
    surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.9)
    surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")

    reader = UsdShade.Shader.Define(stage, f"{prim_path}/StReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)

    texture = UsdShade.Shader.Define(stage, f"{prim_path}/BaseColorTexture")
    texture.CreateIdAttr("UsdUVTexture")
    texture.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(texture_name))
    texture.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    texture.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
    texture.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("repeat")
    texture.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("repeat")
    texture.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)

    surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(
        texture.ConnectableAPI(), "rgb")
    return material
