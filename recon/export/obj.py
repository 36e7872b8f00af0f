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
    np.savetxt(out, mesh.vertices, fmt="v %.6f %.6f %.6f")
    np.savetxt(out, uv_table, fmt="vt %.6f %.6f")
    np.savetxt(out, mesh.vertex_normals(), fmt="vn %.5f %.5f %.5f")
    out.write(f"usemtl {material}\ns 1\n")
    np.savetxt(out, corners.reshape(-1, 9), fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
    return out.getvalue()


def _obj_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "Model"
