"""Which axis is up in a written file: Y (ours, glTF's, USD's) or Z (Blender's, many CAD and point
cloud tools'). Only the formats with no up convention of their own (PLY, OBJ) take the option."""

from __future__ import annotations

import numpy as np

from core.errors import ConfigError
from recon.export.mesh_data import TexturedMesh

UP_AXES = ("y", "z")
# A proper rotation (+90 degrees about x): Y-up (x, y, z) -> Z-up (x, -z, y); the height y becomes z
# and triangles keep their winding.
Y_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def check_up_axis(up: str) -> str:
    if up not in UP_AXES:
        raise ConfigError(f"expected an up axis, y or z, got {up!r}", "up")
    return up


def with_up_axis(mesh: TexturedMesh, up: str) -> TexturedMesh:
    """``mesh`` (Y up) turned so that ``up`` is its up axis."""
    if check_up_axis(up) == "y":
        return mesh
    return TexturedMesh(
        vertices=mesh.vertices.astype(np.float64) @ Y_TO_Z_UP.T, faces=mesh.faces, uvs=mesh.uvs,
        texture=mesh.texture, normals=mesh.vertex_normals().astype(np.float64) @ Y_TO_Z_UP.T,
    )
