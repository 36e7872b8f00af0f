"""Wavefront OBJ + MTL + texture PNG: the plainest interchange format, for DCC tools."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.fsio import atomic_write_bytes, atomic_write_text
from recon.export.mesh_data import TexturedMesh
from recon.export.texture_io import encode_texture


def write_obj(mesh: TexturedMesh, path: Path, *, name: str = "Model") -> Path:
    """Write ``path`` (.obj), ``<stem>.mtl`` and ``<stem>_basecolor.png`` beside it; return ``path``.

    Each file is published atomically; the texture and material first, so the .obj never
    points at a missing file.
    """
    path = Path(path)
    if path.suffix.lower() != ".obj":
        raise ConfigError(f"an OBJ file name must end in .obj, got {path.name!r}", "path")
    mesh.validate()
    mtl_path = path.with_suffix(".mtl")
    texture_path = path.with_name(f"{path.stem}_basecolor.png")
    material = f"{_obj_name(name)}_material"
    texture = encode_texture(mesh.texture, "png")
    obj_text = obj_text_for(mesh, mtl_path.name, material, _obj_name(name))
    atomic_write_bytes(texture_path, texture)
    atomic_write_text(mtl_path, (
        f"newmtl {material}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {texture_path.name}\n"))
    atomic_write_text(path, obj_text)
    return path


def obj_text_for(mesh: TexturedMesh, mtl_name: str, material: str, object_name: str) -> str:
    """The .obj text: v, vt (deduplicated), vn, and f v/vt/vn with 1-based indices."""
    assert mesh.uvs is not None
    corner_uv = mesh.corner_uvs().reshape(-1, 2)  # (3M, 2)
    uv_table, uv_index = np.unique(corner_uv, axis=0, return_inverse=True)  # (T, 2), (3M,)
    v_index = mesh.faces.reshape(-1)  # (3M,)
    corners = np.column_stack([v_index, uv_index.reshape(-1), v_index]) + 1  # (3M, 3)
    out = io.StringIO()
    out.write(f"# ScanBridge export: {mesh.vertex_count} vertices, {mesh.face_count} triangles\n")
    out.write(f"mtllib {mtl_name}\no {object_name}\n")
    out.write(_lines("v %.6f %.6f %.6f\n", mesh.vertices))
    out.write(_lines("vt %.6f %.6f\n", uv_table))
    out.write(_lines("vn %.5f %.5f %.5f\n", mesh.vertex_normals()))
    out.write(f"usemtl {material}\ns 1\n")
    out.write(_lines("f %d/%d/%d %d/%d/%d %d/%d/%d\n", corners.reshape(-1, 9)))
    return out.getvalue()


def _lines(fmt: str, rows: np.ndarray) -> str:
    """``fmt`` applied to every row of ``rows`` (R, C): one %-format call, ~3x faster than savetxt."""
    return (fmt * len(rows)) % tuple(rows.ravel().tolist())


def _obj_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "Model"
