"""Binary little-endian PLY for fused meshes and point clouds, published atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.fsio import atomic_write_bytes


def _vertex_block(points: np.ndarray, normals: np.ndarray, colors: np.ndarray | None) -> tuple[str, bytes]:
    """Header lines and packed records. points, normals: (N, 3); colors: (N, 3) uint8 or None."""
    fields = [("p", "<f4", 3), ("n", "<f4", 3)]
    header = ("property float x\nproperty float y\nproperty float z\n"
              "property float nx\nproperty float ny\nproperty float nz\n")
    if colors is not None:
        fields.append(("c", "u1", 3))
        header += "property uchar red\nproperty uchar green\nproperty uchar blue\n"
    records = np.empty(len(points), dtype=fields)
    records["p"] = points
    records["n"] = normals
    if colors is not None:
        records["c"] = colors
    return f"element vertex {len(points)}\n" + header, records.tobytes()


def write_mesh_ply(
    path: Path, vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, colors: np.ndarray | None
) -> Path:
    """vertices, normals: (V, 3) float; faces: (F, 3) int; colors: (V, 3) uint8 or None."""
    vertex_header, vertex_data = _vertex_block(vertices, normals, colors)
    face = np.empty(len(faces), dtype=[("count", "u1"), ("idx", "<i4", 3)])
    face["count"] = 3
    face["idx"] = faces
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment ScanBridge TSDF fusion, metres\n"
        + vertex_header
        + f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    return atomic_write_bytes(Path(path), header.encode("ascii") + vertex_data + face.tobytes())


def write_points_ply(path: Path, points: np.ndarray, normals: np.ndarray, colors: np.ndarray | None) -> Path:
    """points, normals: (N, 3) float; colors: (N, 3) uint8 or None."""
    vertex_header, vertex_data = _vertex_block(points, normals, colors)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment ScanBridge TSDF fusion points, metres\n"
        + vertex_header + "end_header\n"
    )
    return atomic_write_bytes(Path(path), header.encode("ascii") + vertex_data)
