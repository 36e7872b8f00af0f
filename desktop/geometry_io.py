"""Read result files (PLY meshes and point clouds, GLB/OBJ textured meshes) into viewer data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import InputError
from desktop.viewer.scene import ViewMesh, ViewPoints

MAX_POINTS = 400_000
MESH_SUFFIXES = (".ply", ".glb", ".obj")


def _colors_u8(colors: np.ndarray) -> np.ndarray | None:
    if colors is None or len(colors) == 0:
        return None
    c = np.asarray(colors)
    if c.dtype != np.uint8:
        c = np.clip(np.rint(c * 255.0 if c.max() <= 1.0 else c), 0, 255).astype(np.uint8)
    return c[:, :3]


def ply_has_faces(path: Path) -> bool:
    """Whether a PLY file declares faces with a count above zero (reads only its header)."""
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("ascii", "replace").strip()
            if line.startswith("element face"):
                return int(line.split()[-1]) > 0
            if line == "end_header":
                return False
    return False


def load_points(path: Path | str, max_points: int = MAX_POINTS) -> ViewPoints:
    """A point cloud (or a mesh's vertices) from a PLY; at most ``max_points`` (random subset)."""
    import trimesh

    path = Path(path)
    try:
        data = trimesh.load(str(path), process=False)
    except Exception as e:  # trimesh raises many kinds for a bad file
        raise InputError(f"cannot read this point cloud ({e})", path) from None
    pts = np.asarray(getattr(data, "vertices", np.zeros((0, 3))), np.float32)  # (N, 3)
    if len(pts) == 0:
        raise InputError("holds no points", path)
    raw = getattr(data, "colors", None)
    if raw is None or len(raw) == 0:
        raw = getattr(getattr(data, "visual", None), "vertex_colors", None)
    colors = _colors_u8(np.asarray(raw)) if raw is not None and len(raw) == len(pts) else None
    if len(pts) > max_points:
        keep = np.random.default_rng(0).choice(len(pts), max_points, replace=False)
        pts, colors = pts[keep], None if colors is None else colors[keep]
    return ViewPoints(pts, colors)


def _load_trimesh(path: Path) -> ViewMesh:
    """Any mesh trimesh reads; a texture and uvs are kept, else vertex colours."""
    import trimesh

    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many kinds for a bad file
        raise InputError(f"cannot read this mesh ({e})", path) from None
    faces = np.asarray(mesh.faces, np.int32)
    if len(faces) == 0:
        raise InputError("holds no triangles", path)
    vertices = np.asarray(mesh.vertices, np.float32)
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if uv is not None and image is not None:
        texture = np.asarray(image.convert("RGB"), np.uint8)
        return ViewMesh(vertices, faces, None, np.asarray(uv, np.float32)[faces], texture)
    colors = getattr(visual, "vertex_colors", None)
    return ViewMesh(vertices, faces, _colors_u8(np.asarray(colors)) if colors is not None else None)


def load_mesh(path: Path | str) -> ViewMesh:
    """A mesh from .ply (vertex colours) or .glb/.obj (with their texture when they have one)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path)
    suffix = path.suffix.lower()
    if suffix in MESH_SUFFIXES:
        return _load_trimesh(path)
    raise InputError(f"cannot show {suffix} files (known: {', '.join(MESH_SUFFIXES)})", path)
