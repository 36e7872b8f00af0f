"""What the viewer draws: meshes (vertex-coloured or textured), point clouds and camera frusta."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class ViewMesh:
    """vertices (N, 3) float32; faces (M, 3) int32; vertex_colors (N, 3) uint8 or None;
    corner_uvs (M, 3, 2) float32 with texture (H, W, 3) uint8 (uv (0, 0) = bottom-left), or None."""

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None
    corner_uvs: np.ndarray | None = None
    texture: np.ndarray | None = None

    @property
    def textured(self) -> bool:
        return self.corner_uvs is not None and self.texture is not None


@dataclass(frozen=True, eq=False)
class ViewPoints:
    """points (N, 3) float32; colors (N, 3) uint8 or None (drawn grey)."""

    points: np.ndarray
    colors: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ViewFrustum:
    """A camera drawn as a small pyramid: c2w (4, 4) OpenCV camera-to-world, image size, focal."""

    c2w: np.ndarray
    width: int
    height: int
    fx: float
    fy: float
    flagged: bool = False  # drawn in the warning colour (for example: blurry)

    def segments(self, size: float) -> np.ndarray:
        """(8, 2, 3) world-space line segments: 4 from the centre to the image corners, 4 around it."""
        w, h = self.width, self.height
        corners_px = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        rays = np.stack([(corners_px[:, 0] - w / 2) / self.fx, (corners_px[:, 1] - h / 2) / self.fy,
                         np.ones(4)], axis=1)  # (4, 3) camera frame, z forward
        rays *= size / np.linalg.norm(rays, axis=1, keepdims=True)
        c2w = np.asarray(self.c2w, np.float64)
        centre = c2w[:3, 3]
        corners = rays @ c2w[:3, :3].T + centre  # (4, 3)
        spokes = np.stack([np.repeat(centre[None], 4, axis=0), corners], axis=1)  # (4, 2, 3)
        rim = np.stack([corners, np.roll(corners, -1, axis=0)], axis=1)  # (4, 2, 3)
        return np.concatenate([spokes, rim], axis=0)


@dataclass(eq=False)
class Scene:
    meshes: list[ViewMesh] = field(default_factory=list)
    points: list[ViewPoints] = field(default_factory=list)
    frusta: list[ViewFrustum] = field(default_factory=list)

    def all_points(self) -> np.ndarray:
        """(K, 3) every vertex, point and camera centre: what framing should see."""
        parts = [m.vertices for m in self.meshes] + [p.points for p in self.points]
        parts += [np.asarray(f.c2w)[None, :3, 3] for f in self.frusta]
        parts = [np.asarray(p, np.float64).reshape(-1, 3) for p in parts if len(p)]
        return np.concatenate(parts) if parts else np.zeros((0, 3))

    @property
    def empty(self) -> bool:
        return not (self.meshes or self.points or self.frusta)
