"""Export a result file through recon.export at a detail preset.

Until the mesh and texture stages land, a vertex-coloured mesh (fusion's mesh.ply) is decimated to
the preset's triangle budget and its colours are put into a texture atlas (one flat cell per
face), because AR Quick Look ignores vertex colours. A textured GLB/OBJ is exported as it is.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from core.errors import InputError
from recon.export.mesh_data import TexturedMesh
from recon.export.presets import MAX_TEXTURE_SIZE, triangle_budget

CELL_PX = 4  # atlas cell per face


def face_colour_atlas(faces: np.ndarray, vertex_colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """faces (M, 3), vertex_colors (N, 3) uint8 -> corner uvs (M, 3, 2) and texture (S, S, 3) uint8."""
    m = len(faces)
    cols = max(1, math.ceil(math.sqrt(m)))
    size = cols * CELL_PX
    if size > MAX_TEXTURE_SIZE:
        raise InputError(f"{m} faces do not fit a {MAX_TEXTURE_SIZE} px atlas; use a lower detail", "detail")
    colour = vertex_colors[faces].astype(np.float32).mean(axis=1)  # (M, 3)
    cells = np.zeros((cols * cols, 3), np.float32)
    cells[:m] = colour
    texture = np.repeat(np.repeat(cells.reshape(cols, cols, 3), CELL_PX, axis=0), CELL_PX, axis=1)
    ix, iy = np.arange(m) % cols, np.arange(m) // cols  # (M,) cell column, row (row 0 at the top)
    inset = np.array([[0.5, 0.5], [CELL_PX - 0.5, 0.5], [0.5, CELL_PX - 0.5]], np.float32)  # (3, 2) px
    px = np.stack([ix, iy], axis=1)[:, None, :].astype(np.float32) * CELL_PX + inset[None]  # (M, 3, 2)
    uv = np.stack([px[..., 0] / size, 1.0 - px[..., 1] / size], axis=-1).astype(np.float32)
    return uv, np.clip(np.rint(texture), 0, 255).astype(np.uint8)


def _decimated(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, budget: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(faces) <= budget:
        return vertices, faces, colors
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices.astype(np.float64)),
                                     o3d.utility.Vector3iVector(faces.astype(np.int32)))
    mesh.vertex_colors = o3d.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
    small = mesh.simplify_quadric_decimation(int(budget * 0.98))
    return (np.asarray(small.vertices, np.float32), np.asarray(small.triangles, np.int32),
            np.clip(np.rint(np.asarray(small.vertex_colors) * 255), 0, 255).astype(np.uint8))


def textured_mesh_from(source: Path, detail: str) -> TexturedMesh:
    """The result at ``source`` as a TexturedMesh within ``detail``'s triangle budget."""
    from desktop.geometry_io import load_mesh

    budget = triangle_budget(detail)
    view = load_mesh(source)
    if view.textured:
        if len(view.faces) > budget:
            raise InputError(f"{len(view.faces)} triangles is over the {detail} budget ({budget}); "
                             "choose a higher detail", source)
        return TexturedMesh(view.vertices, view.faces, view.corner_uvs, view.texture)
    colors = view.vertex_colors if view.vertex_colors is not None else np.full((len(view.vertices), 3), 200,
                                                                               np.uint8)
    v, f, c = _decimated(view.vertices, view.faces, colors, budget)
    uv, texture = face_colour_atlas(f, c)
    return TexturedMesh(v, f, uv, texture)


def export_result(source: Path, dest: Path, detail: str, *, name: str = "Model", texture_format: str = "png",
                  up: str = "y") -> Path:
    """Write ``source`` (a mesh result) to ``dest`` (.usdz/.glb/.obj/.ply) at ``detail``, the texture
    as ``texture_format`` (png or jpeg), PLY/OBJ with ``up`` (y or z) as the up axis."""
    from recon.export.exporter import export

    mesh = textured_mesh_from(Path(source), detail)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return export(mesh, dest, name=name, preset=detail, texture_format=texture_format, up=up)
