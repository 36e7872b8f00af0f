"""The raw mesh type the mesh steps pass between each other (the textured result is
recon.export.mesh_data.TexturedMesh, which the exporters read)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh: vertices (N, 3) float64, faces (M, 3) int64, optional colours (N, 3) 0..1."""

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None

    def __post_init__(self) -> None:
        v, f = np.asarray(self.vertices), np.asarray(self.faces)
        if v.ndim != 2 or v.shape[1] != 3:
            raise InputError(f"vertices must have shape (N, 3), got {v.shape}", "mesh.vertices")
        if f.ndim != 2 or f.shape[1] != 3:
            raise InputError(f"faces must have shape (M, 3), got {f.shape}", "mesh.faces")
        if f.size and (f.min() < 0 or f.max() >= len(v)):
            raise InputError("faces index vertices that do not exist", "mesh.faces")
        if not np.all(np.isfinite(v)):
            raise InputError("vertices contain NaN or infinity", "mesh.vertices")
        object.__setattr__(self, "vertices", np.array(v, dtype=np.float64))  # own the memory
        object.__setattr__(self, "faces", np.array(f, dtype=np.int64))
        if self.vertex_colors is not None:
            c = np.array(self.vertex_colors, dtype=np.float64)
            if c.shape != v.shape:
                raise InputError(f"must have shape {v.shape}, got {c.shape}", "mesh.vertex_colors")
            object.__setattr__(self, "vertex_colors", c)

    @property
    def n_faces(self) -> int:
        return int(len(self.faces))

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """This mesh under a 4x4 similarity transform (rotation, uniform scale, translation)."""
        m = np.asarray(matrix, dtype=np.float64)
        v = self.vertices @ m[:3, :3].T + m[:3, 3]  # (N, 3)
        return Mesh(v, self.faces, self.vertex_colors)
