"""The field's zero level set as a triangle mesh in the capture's world frame, in metres.

A coarse pass over the field's cube finds the box where the SDF is negative; marching cubes
(scikit-image) then runs over that box, grown by two cells, at ``resolution`` cells along its
longest side. Faces wind counter-clockwise seen from outside; normals are the SDF's gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import ReconstructionError
from recon.surface.field import SurfaceField
from recon.surface.scene_data import Normalisation

CHUNK = 1 << 16
COARSE_CELLS = 48


@dataclass(frozen=True, eq=False)
class SurfaceMesh:
    vertices: np.ndarray  # (V, 3) float64, world metres
    faces: np.ndarray  # (F, 3) int32
    normals: np.ndarray  # (V, 3) float32, unit, outwards
    colors: np.ndarray  # (V, 3) uint8


@torch.no_grad()
def _sdf_grid(field: SurfaceField, lo: np.ndarray, hi: np.ndarray, counts: np.ndarray,
              device: str) -> np.ndarray:
    axes = [np.linspace(lo[i], hi[i], counts[i], dtype=np.float32) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = np.empty(len(grid), np.float32)
    for start in range(0, len(grid), CHUNK):
        chunk = torch.from_numpy(grid[start:start + CHUNK]).to(device)
        values[start:start + CHUNK] = field.sdf(chunk).float().cpu().numpy()
    return values.reshape(tuple(int(c) for c in counts))


def _inside_box(field: SurfaceField, device: str, limit: tuple[np.ndarray, np.ndarray] | None,
                ) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    if limit is not None:
        lo, hi = np.maximum(lo, limit[0]), np.minimum(hi, limit[1])
    counts = np.full(3, COARSE_CELLS + 1)
    values = _sdf_grid(field, lo, hi, counts, device)
    inside = np.argwhere(values < 0)
    if len(inside) == 0:
        raise ReconstructionError("the trained field has no surface (the SDF is positive everywhere)")
    cell = (hi - lo) / COARSE_CELLS
    return (np.maximum(lo, lo + (inside.min(0) - 1) * cell),
            np.minimum(hi, lo + (inside.max(0) + 1) * cell))


def extract_mesh(field: SurfaceField, normalisation: Normalisation, resolution: int,
                 device: str) -> SurfaceMesh:
    from skimage.measure import marching_cubes

    limit = None
    if normalisation.object_box is not None:
        limit = (normalisation.to_field(np.array(normalisation.object_box[0])),
                 normalisation.to_field(np.array(normalisation.object_box[1])))
    box_lo, box_hi = _inside_box(field, device, limit)
    cell = float((box_hi - box_lo).max()) / resolution
    lo, hi = box_lo - 2 * cell, box_hi + 2 * cell
    if limit is not None:  # cut where depth saw the object end, leaving an open rim there
        lo, hi = np.maximum(lo, limit[0]), np.minimum(hi, limit[1])
    counts = np.ceil((hi - lo) / cell).astype(int) + 1
    values = _sdf_grid(field, lo, lo + (counts - 1) * cell, counts, device)
    if not (values.min() < 0 < values.max()):
        raise ReconstructionError("the trained field has no surface inside its box")
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(cell, cell, cell),
                                        gradient_direction="ascent")
    points = verts + lo  # field frame
    normals, colors = _normals_and_colors(field, points.astype(np.float32), device)
    faces = faces[:, ::-1]  # skimage winds them clockwise seen from the positive (outer) side
    return SurfaceMesh(normalisation.to_world(points.astype(np.float64)), faces.astype(np.int32),
                       normals, colors)


def _normals_and_colors(field: SurfaceField, points: np.ndarray,
                        device: str) -> tuple[np.ndarray, np.ndarray]:
    normals = np.empty_like(points)
    colors = np.empty((len(points), 3), np.uint8)
    for start in range(0, len(points), CHUNK // 8):
        x = torch.from_numpy(points[start:start + CHUNK // 8]).to(device)
        with torch.no_grad():
            _, grad, _ = field.gradient_and_laplacian(x)
            n = torch.nn.functional.normalize(grad, dim=-1)
            _, geometry = field.sdf_and_geometry(x)
            rgb = field.color(geometry, x, -n)  # as seen head-on from outside
        normals[start:start + len(x)] = n.cpu().numpy()
        colors[start:start + len(x)] = np.clip(rgb.cpu().numpy() * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return normals, colors
