"""Binary PLY with per-vertex normals and colours sampled from the texture (for point/mesh tools)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.fsio import atomic_write_bytes
from recon.export.mesh_data import TexturedMesh
from recon.export.texture_io import sample_texture
from recon.export.up_axis import check_up_axis, with_up_axis


def write_ply(mesh: TexturedMesh, path: Path, *, up: str = "y") -> Path:
    """Write ``mesh`` as binary little-endian PLY at ``path`` (atomically); return ``path``.

    ``up``: the file's up axis, y (as the mesh) or z (the mesh turned so its height is +z); the
    header says which in a ``comment up_axis`` line. Vertices keep their welded topology; a
    vertex's colour is the texture at its uv, or the mean over its corners when uvs are per corner.
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise ConfigError(f"a PLY file name must end in .ply, got {path.name!r}", "path")
    check_up_axis(up)
    mesh.validate()
    atomic_write_bytes(path, ply_bytes(with_up_axis(mesh, up), up))
    return path


def vertex_colours(mesh: TexturedMesh) -> np.ndarray:
    """(N, 3) uint8 colour per vertex, sampled from the texture."""
    assert mesh.uvs is not None
    if not mesh.uvs_per_corner:
        colour = sample_texture(mesh.texture, mesh.uvs)  # (N, 3)
    else:
        samples = sample_texture(mesh.texture, mesh.uvs.reshape(-1, 2))  # (3M, 3)
        idx = mesh.faces.reshape(-1)
        count = np.bincount(idx, minlength=mesh.vertex_count)  # (N,)
        colour = np.stack([np.bincount(idx, samples[:, c], minlength=mesh.vertex_count)
                           for c in range(3)], axis=1) / np.maximum(count, 1)[:, None]
    return np.clip(np.rint(colour), 0, 255).astype(np.uint8)


def ply_bytes(mesh: TexturedMesh, up: str = "y") -> bytes:
    """The PLY file of ``mesh`` as it is; ``up`` names its up axis in the header."""
    n, m = mesh.vertex_count, mesh.face_count
    header = (
        f"ply\nformat binary_little_endian 1.0\ncomment ScanBridge export, metres\ncomment up_axis {up}\n"
        f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {m}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    vert = np.empty(n, dtype=[("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    vert["p"] = mesh.vertices
    vert["n"] = mesh.vertex_normals()
    vert["c"] = vertex_colours(mesh)
    face = np.empty(m, dtype=[("count", "u1"), ("idx", "<i4", 3)])
    face["count"] = 3
    face["idx"] = mesh.faces
    return header + vert.tobytes() + face.tobytes()
