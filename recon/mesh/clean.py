"""Mesh clean-up: degenerate and duplicate faces, floaters and small components, small holes."""

from __future__ import annotations

import numpy as np
import open3d as o3d

from core.errors import ReconstructionError
from recon.mesh.types import Mesh


def to_open3d(mesh: Mesh) -> o3d.geometry.TriangleMesh:
    m = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.vertices), o3d.utility.Vector3iVector(mesh.faces.astype(np.int32))
    )
    if mesh.vertex_colors is not None:
        m.vertex_colors = o3d.utility.Vector3dVector(mesh.vertex_colors)
    return m


def from_open3d(m: o3d.geometry.TriangleMesh) -> Mesh:
    colors = np.asarray(m.vertex_colors) if m.has_vertex_colors() else None
    return Mesh(np.asarray(m.vertices), np.asarray(m.triangles, dtype=np.int64), colors)


def remove_degenerate(mesh: Mesh) -> Mesh:
    """Merge duplicate vertices; drop zero-area, repeated and non-manifold-edge faces."""
    m = to_open3d(mesh)
    m.remove_duplicated_vertices()
    m.remove_degenerate_triangles()
    m.remove_duplicated_triangles()
    m.remove_non_manifold_edges()
    m.remove_unreferenced_vertices()
    v, f = np.asarray(m.vertices), np.asarray(m.triangles)
    area2 = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    scale = max(float(np.ptp(v, axis=0).max()) if len(v) else 0.0, 1e-12)
    m.remove_triangles_by_mask(area2 <= 1e-14 * scale * scale)
    m.remove_unreferenced_vertices()
    return from_open3d(m)


def keep_large_components(mesh: Mesh, min_fraction: float = 0.1) -> Mesh:
    """Keep the connected components with at least ``min_fraction`` of the largest one's
    triangles: floaters and specks go, a second real part of the object stays."""
    m = to_open3d(mesh)
    labels, counts, _areas = m.cluster_connected_triangles()
    labels, counts = np.asarray(labels), np.asarray(counts)
    if len(counts) == 0:
        raise ReconstructionError("the mesh has no triangles left", "mesh")
    keep = counts >= min_fraction * counts.max()
    m.remove_triangles_by_mask(~keep[labels])
    m.remove_unreferenced_vertices()
    return from_open3d(m)


def fill_small_holes(mesh: Mesh, max_hole_fraction: float = 0.05) -> Mesh:
    """Close holes whose boundary is shorter than ``max_hole_fraction`` of the mesh's bounding
    box diagonal (open3d's VTK hole filler). Vertex colours of new faces come from their rims."""
    diag = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    t = o3d.t.geometry.TriangleMesh()
    t.vertex.positions = o3d.core.Tensor(mesh.vertices)
    t.triangle.indices = o3d.core.Tensor(mesh.faces)
    if mesh.vertex_colors is not None:
        t.vertex.colors = o3d.core.Tensor(mesh.vertex_colors)
    filled = t.fill_holes(hole_size=max_hole_fraction * diag)
    v = filled.vertex.positions.numpy().copy()
    f = filled.triangle.indices.numpy().copy().astype(np.int64)
    colors = None
    if mesh.vertex_colors is not None:
        colors = filled.vertex.colors.numpy().copy() if "colors" in filled.vertex else None
        if colors is None or len(colors) != len(v):
            colors = None
    return Mesh(v, f, colors)


def clean_mesh(mesh: Mesh, min_component_fraction: float = 0.1, max_hole_fraction: float = 0.05) -> Mesh:
    """Degenerate faces, then small components and floaters, then small holes."""
    if mesh.n_faces == 0:
        raise ReconstructionError("the mesh has no triangles", "mesh")
    out = remove_degenerate(mesh)
    out = keep_large_components(out, min_component_fraction)
    if max_hole_fraction > 0:
        out = remove_degenerate(fill_small_holes(out, max_hole_fraction))
    if out.n_faces == 0:
        raise ReconstructionError("nothing is left after clean-up", "mesh")
    return out
