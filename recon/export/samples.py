"""Procedural textured meshes for tests, benchmarks and demos (no files, no downloads)."""

from __future__ import annotations

import math

import numpy as np

from recon.export.mesh_data import TexturedMesh


def checker_texture(
    height: int, width: int, *, squares: int = 8, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """(H, W, 3) uint8: coloured checkerboard with a gradient, plus optional noise (0..1) so the
    image compresses like a photo-baked texture rather than a flat one."""
    yy, xx = np.mgrid[0:height, 0:width]
    check = ((xx * squares // width) + (yy * squares // height)) % 2  # (H, W)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 40 + 180 * check
    img[..., 1] = 255.0 * yy / max(height - 1, 1)
    img[..., 2] = 255.0 * xx / max(width - 1, 1)
    if noise > 0:
        img += np.random.default_rng(seed).normal(0.0, 128.0 * noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def uv_sphere(
    radius: float = 0.1,
    rows: int = 16,
    cols: int = 32,
    *,
    texture: np.ndarray | None = None,
    per_corner_uvs: bool = False,
) -> TexturedMesh:
    """A latitude/longitude sphere standing on y = 0 with an equirectangular uv map.

    2 * cols * (rows - 1) triangles, every vertex used. per_corner_uvs=False duplicates the seam
    and pole vertices so uvs are per vertex; True welds them and gives (M, 3, 2) per-corner uvs.
    """
    i, j = np.mgrid[0:rows + 1, 0:cols + 1]  # (rows+1, cols+1)
    theta = math.pi * i / rows  # 0 at the top pole
    phi = 2 * math.pi * j / cols
    pos = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta), np.sin(theta) * np.cos(phi)], axis=-1)
    vertices = (radius * pos + [0.0, radius, 0.0]).reshape(-1, 3)  # (V, 3)
    uvs = np.stack([j / cols, 1.0 - i / rows], axis=-1).reshape(-1, 2)  # (V, 2)

    def vid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * (cols + 1) + b

    qi, qj = np.mgrid[0:rows, 0:cols]
    qi, qj = qi.ravel(), qj.ravel()
    a, b = vid(qi, qj), vid(qi + 1, qj)
    c, d = vid(qi + 1, qj + 1), vid(qi, qj + 1)
    upper = np.stack([a, b, c], axis=1)[qi != rows - 1]  # skip the degenerate one at the bottom pole
    lower = np.stack([a, c, d], axis=1)[qi != 0]  # skip the degenerate one at the top pole
    faces = np.concatenate([upper, lower])  # (M, 3)
    tex = texture if texture is not None else checker_texture(256, 512)
    if not per_corner_uvs:
        used, compact = np.unique(faces.ravel(), return_inverse=True)  # drop the unused pole copies
        return TexturedMesh(vertices[used], compact.reshape(-1, 3), uvs[used], tex)

    corner_uvs = uvs[faces]  # (M, 3, 2)
    ci, cj = faces // (cols + 1), faces % (cols + 1)
    cj = np.where((cj == cols) | (ci == 0) | (ci == rows), 0, cj)  # one vertex per seam point and pole
    canon = ci * (cols + 1) + cj
    used, welded = np.unique(canon.ravel(), return_inverse=True)
    return TexturedMesh(vertices[used], welded.reshape(-1, 3), corner_uvs, tex)
