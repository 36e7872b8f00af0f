"""Reading the raw mesh an earlier stage wrote, and writing/reading the mesh stage's result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open3d as o3d

from core.errors import InputError
from core.fsio import atomic_writer
from recon.export.mesh_data import TexturedMesh
from recon.mesh.types import Mesh


def read_mesh_ply(path: Path) -> Mesh:
    """A triangle mesh from a PLY (or OBJ/OFF/GLB that open3d reads); InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such mesh file", path)
    m = o3d.io.read_triangle_mesh(str(path))
    if len(m.triangles) == 0:
        raise InputError("not a triangle mesh, or it has no triangles", path)
    colors = np.asarray(m.vertex_colors) if m.has_vertex_colors() else None
    try:
        return Mesh(np.asarray(m.vertices), np.asarray(m.triangles), colors)
    except InputError as e:
        raise InputError(e.reason, f"{path}: {e.where}") from None


def write_textured_npz(path: Path, mesh: TexturedMesh) -> Path:
    """The textured mesh as one .npz (vertices, faces, uvs, normals, texture), published atomically."""
    with atomic_writer(Path(path)) as f:
        np.savez(f, vertices=mesh.vertices, faces=mesh.faces, uvs=mesh.uvs,
                 normals=mesh.vertex_normals(), texture=mesh.texture)
    return Path(path)


def read_textured_npz(path: Path) -> TexturedMesh:
    """The mesh :func:`write_textured_npz` wrote; InputError naming the file when it is unusable."""
    try:
        with np.load(Path(path)) as d:
            arrays = {k: d[k] for k in ("vertices", "faces", "uvs", "texture", "normals")}
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"not a textured mesh file: {e}", path) from None
    try:
        return TexturedMesh(**arrays)
    except InputError as e:
        raise InputError(e.reason, f"{path}: {e.where}") from None
