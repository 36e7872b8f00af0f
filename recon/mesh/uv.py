"""UV unwrapping with xatlas: charts packed for a square texture of a given size, with padding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xatlas

from recon.mesh.types import Mesh


@dataclass(frozen=True)
class UVMesh:
    """A mesh split along UV seams: vertices (N, 3), faces (M, 3), uvs (N, 2) in 0..1 (v up),
    and for each vertex the index of the input vertex it came from (N,)."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    source_vertex: np.ndarray


def unwrap(mesh: Mesh, texture_size: int = 2048, padding_px: int = 4, max_charts_hint: int = 200) -> UVMesh:
    """Segment ``mesh`` into charts and pack them into a ``texture_size``² atlas.

    Charts are capped at 1/``max_charts_hint`` of the surface area: large smooth charts make
    xatlas's packer very slow, and small ones cost little texture space.
    """
    v = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    f = np.ascontiguousarray(mesh.faces, dtype=np.uint32)
    tri = mesh.vertices[mesh.faces]  # (M, 3, 3)
    area = 0.5 * float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())
    atlas = xatlas.Atlas()
    atlas.add_mesh(v, f)
    chart = xatlas.ChartOptions()
    chart.max_chart_area = area / max_charts_hint
    chart.max_iterations = 1
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = int(padding_px)
    pack.bilinear = True
    atlas.generate(chart, pack)
    vmapping, indices, uvs = atlas[0]  # (N,), (M, 3), (N, 2); uvs normalised by the atlas size
    uvs = np.asarray(uvs, dtype=np.float32).copy()
    # xatlas's atlas is only approximately texture_size wide; its uvs are 0..1 either way.
    uvs[:, 1] = 1.0 - uvs[:, 1]  # xatlas rows go down; ours (OBJ/USD) go up
    vmapping = np.asarray(vmapping, dtype=np.int64)
    return UVMesh(mesh.vertices[vmapping], np.asarray(indices, dtype=np.int64), uvs, vmapping)
