"""TexturedMesh: the one mesh type the mesh/texture stages hand to the exporters (numpy only).

Conventions:
- vertices are metres, Y up, the object standing on y = 0 (the exporters do not move it);
- faces are counter-clockwise seen from outside (right-handed, as USD, glTF and OBJ expect);
- uvs follow USD/OBJ/OpenGL: (0, 0) is the bottom-left of the texture image, (1, 1) the top-right;
- texture rows go top to bottom (as an image file stores them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError


def area_weighted_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) float32 unit vertex normals from area-weighted face normals, in the faces' winding
    (a vertex no face uses gets +y)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    tri = v[f]  # (M, 3, 3)
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (M, 3), length = 2 * area
    acc = np.zeros_like(v)  # (N, 3)
    idx = f.ravel()  # (3M,)
    for axis in range(3):
        acc[:, axis] = np.bincount(idx, np.repeat(face_n[:, axis], 3), minlength=len(v))
    length = np.linalg.norm(acc, axis=1, keepdims=True)  # (N, 1)
    out = np.where(length > 1e-20, acc / np.maximum(length, 1e-20), [0.0, 1.0, 0.0])
    return out.astype(np.float32)


@dataclass(frozen=True, eq=False)
class TexturedMesh:
    """A triangle mesh with one base-colour texture.

    vertices: (N, 3) float32, metres, Y up.
    faces:    (M, 3) int32 indices into vertices.
    uvs:      (N, 2) float32 per vertex, or (M, 3, 2) float32 per face corner (seams without
              splitting vertices).
    texture:  (H, W, 3) uint8 sRGB, row 0 is the top of the image.
    normals:  (N, 3) float32 unit per-vertex normals, or None to compute area-weighted ones.

    The constructor converts dtypes and validates; writers validate again, because numpy
    arrays can be changed in place after construction.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None
    texture: np.ndarray
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "vertices", _as_float32(self.vertices, "mesh.vertices"))
        set_(self, "faces", _as_int32(self.faces, "mesh.faces"))
        if self.uvs is not None:
            set_(self, "uvs", _as_float32(self.uvs, "mesh.uvs"))
        if self.normals is not None:
            set_(self, "normals", _as_float32(self.normals, "mesh.normals"))
        self.validate()

    # ---- shape facts -------------------------------------------------------------------------

    @property
    def vertex_count(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def face_count(self) -> int:
        return int(self.faces.shape[0])

    @property
    def uvs_per_corner(self) -> bool:
        """True when uvs are (M, 3, 2) per face corner, False when (N, 2) per vertex."""
        return self.uvs is not None and self.uvs.ndim == 3

    def bounds(self) -> np.ndarray:
        """(2, 3) float64: min corner, max corner."""
        v = self.vertices.astype(np.float64)
        return np.stack([v.min(axis=0), v.max(axis=0)])

    # ---- validation --------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise InputError naming the first bad field; return None when the mesh is usable."""
        v, f, uv, tex, n = self.vertices, self.faces, self.uvs, self.texture, self.normals
        if v.size == 0 or f.size == 0:
            raise InputError(f"the mesh is empty ({len(v)} vertices, {len(f)} faces)", "mesh.faces")
        if v.ndim != 2 or v.shape[1] != 3:
            raise InputError(f"must have shape (N, 3), got {v.shape}", "mesh.vertices")
        if f.ndim != 2 or f.shape[1] != 3:
            raise InputError(f"must have shape (M, 3) triangles, got {f.shape}", "mesh.faces")
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            raise InputError(
                f"{int(bad.sum())} vertices are NaN or infinite (first: index {int(np.argmax(bad))})",
                "mesh.vertices")
        if f.min() < 0 or f.max() >= v.shape[0]:
            raise InputError(
                f"face indices must lie in [0, {v.shape[0] - 1}], got [{f.min()}, {f.max()}]", "mesh.faces")
        if uv is None or uv.size == 0:
            raise InputError("missing: a textured mesh needs texture coordinates", "mesh.uvs")
        if not ((uv.ndim == 2 and uv.shape == (v.shape[0], 2))
                or (uv.ndim == 3 and uv.shape == (f.shape[0], 3, 2))):
            raise InputError(
                f"must have shape (N, 2) = ({v.shape[0]}, 2) per vertex or (M, 3, 2) = "
                f"({f.shape[0]}, 3, 2) per corner, got {uv.shape}", "mesh.uvs")
        if not np.isfinite(uv).all():
            raise InputError("contains NaN or infinite texture coordinates", "mesh.uvs")
        if not isinstance(tex, np.ndarray) or tex.ndim != 3 or tex.shape[2] != 3 or tex.dtype != np.uint8:
            shape = getattr(tex, "shape", None)
            dtype = getattr(tex, "dtype", type(tex).__name__)
            raise InputError(f"must be an (H, W, 3) uint8 RGB image, got shape {shape} {dtype}",
                             "mesh.texture")
        if tex.shape[0] < 1 or tex.shape[1] < 1:
            raise InputError(f"is empty, shape {tex.shape}", "mesh.texture")
        if n is not None:
            if n.shape != v.shape:
                raise InputError(
                    f"must have shape {v.shape} like the vertices, got {n.shape}", "mesh.normals")
            if not np.isfinite(n).all():
                raise InputError("contains NaN or infinite normals", "mesh.normals")

    # ---- derived arrays ----------------------------------------------------------------------

    def corner_uvs(self) -> np.ndarray:
        """(M, 3, 2) float32 texture coordinates of each face corner."""
        assert self.uvs is not None
        return self.uvs if self.uvs_per_corner else self.uvs[self.faces]

    def vertex_normals(self) -> np.ndarray:
        """(N, 3) float32 unit normals: the given ones, else area-weighted face normals."""
        if self.normals is not None:
            return self.normals
        return area_weighted_normals(self.vertices, self.faces)

    def split_at_uv_seams(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-vertex arrays for formats without per-corner uvs (glTF, PLY).

        Returns vertices (K, 3), faces (M, 3), uvs (K, 2), normals (K, 3) where every distinct
        (vertex, uv) pair of a corner becomes one vertex; K == N when uvs are already per vertex.
        """
        normals = self.vertex_normals()
        if not self.uvs_per_corner:
            assert self.uvs is not None
            return self.vertices, self.faces, self.uvs, normals
        corner_v = self.faces.reshape(-1)  # (3M,)
        corner_uv = self.uvs.reshape(-1, 2)  # (3M, 2)
        key = np.empty((corner_v.shape[0], 3), dtype=np.float64)
        key[:, 0] = corner_v
        key[:, 1:] = corner_uv
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        src = corner_v[first]  # (K,) original vertex of each new vertex
        faces = inverse.reshape(-1, 3).astype(np.int32)
        return self.vertices[src], faces, corner_uv[first], normals[src]


def _as_float32(a: object, where: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise InputError(f"cannot be read as numbers: {e}", where) from None


def _as_int32(a: object, where: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"must be integer indices, got {arr.dtype}", where)
    return np.ascontiguousarray(arr.astype(np.int32))
