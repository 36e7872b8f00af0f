"""A software renderer for video frames: a textured mesh seen through a pinhole camera.

numpy only, no GL: triangles are grouped by the size of their screen bounding box so each group
tests a small power-of-two pixel window (big triangles are cut into tiles), and the z-buffer keeps,
per pixel, the smallest (depth, triangle) key packed into one int64. Barycentrics, texture and the
headlight shading (the same lighting as the share page's poster) are then computed once per
visible pixel. Triangles reaching behind the camera's near plane are left out.
"""

from __future__ import annotations

import numpy as np

from generation.video.paths import Intrinsics
from recon.export.mesh_data import TexturedMesh
from recon.export.texture_io import sample_texture

_TILE = 16  # bounding boxes wider than this are rasterised tile by tile
_BATCH_FRAGMENTS = 1 << 21  # bounds memory at about 100 bytes per fragment
_EMPTY = np.iinfo(np.int64).max
DEFAULT_BACKGROUND = (24, 24, 28)


class FrameRenderer:
    """Renders one mesh from many cameras; what does not depend on the camera is computed once."""

    def __init__(self, mesh: TexturedMesh, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> None:
        self.vertices = mesh.vertices.astype(np.float64)
        self.faces = mesh.faces.astype(np.int64)
        self.corner_uvs = mesh.corner_uvs().astype(np.float32)  # (M, 3, 2)
        self.normals = mesh.vertex_normals().astype(np.float32)  # (N, 3)
        self.texture = mesh.texture
        self.background = np.asarray(background, np.float32)
        extent = np.ptp(self.vertices, axis=0).max() if len(self.vertices) else 1.0
        self.near = 1e-4 * max(float(extent), 1e-9)

    def render(self, c2w: np.ndarray, intrinsics: Intrinsics, supersample: int = 1) -> np.ndarray:
        """(height, width, 3) uint8 image seen by the OpenCV camera ``c2w`` (4, 4)."""
        ss = int(supersample)
        w, h = intrinsics.width * ss, intrinsics.height * ss
        w2c = np.linalg.inv(np.asarray(c2w, np.float64))
        cam = self.vertices @ w2c[:3, :3].T + w2c[:3, 3]  # (N, 3) x right, y down, z forward
        z = cam[:, 2]
        zs = np.maximum(z, self.near)
        screen = np.stack([intrinsics.fx * ss * cam[:, 0] / zs + intrinsics.cx * ss,
                           intrinsics.fy * ss * cam[:, 1] / zs + intrinsics.cy * ss], axis=1)  # (N, 2)
        corners = [self.faces[:, i] for i in range(3)]
        front = (z[corners[0]] > self.near) & (z[corners[1]] > self.near) & (z[corners[2]] > self.near)
        keys = _rasterise(screen, zs.astype(np.float32), corners, front, w, h)
        covered = np.nonzero(keys != _EMPTY)[0]
        if ss == 1:
            image = np.empty((h * w, 3), np.uint8)
            image[:] = self.background.astype(np.uint8)
            if covered.size:
                tri = (keys[covered] & 0xFFFFFFFF).astype(np.int64)
                colour = self._shade(tri, covered, screen, zs, w, c2w)
                image[covered] = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
            return image.reshape(h, w, 3)
        image = np.broadcast_to(self.background, (h * w, 3)).copy()
        if covered.size:
            tri = (keys[covered] & 0xFFFFFFFF).astype(np.int64)
            image[covered] = self._shade(tri, covered, screen, zs, w, c2w)
        image = image.reshape(intrinsics.height, ss, intrinsics.width, ss, 3).mean(axis=(1, 3))
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def _shade(self, tri: np.ndarray, pixels: np.ndarray, screen: np.ndarray, z: np.ndarray, w: int,
               c2w: np.ndarray) -> np.ndarray:
        """Colour (K, 3) float of the visible pixels ``pixels`` (K,), each showing triangle ``tri``."""
        corners = self.faces[tri]  # (K, 3)
        p = np.stack([pixels % w + 0.5, pixels // w + 0.5], axis=1)  # (K, 2) pixel centres
        a, b, c = (screen[corners[:, i]] for i in range(3))  # (K, 2) each
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        area = np.where(np.abs(area) > 1e-12, area, 1e-12)
        l0 = ((b[:, 0] - p[:, 0]) * (c[:, 1] - p[:, 1]) - (b[:, 1] - p[:, 1]) * (c[:, 0] - p[:, 0])) / area
        l1 = ((c[:, 0] - p[:, 0]) * (a[:, 1] - p[:, 1]) - (c[:, 1] - p[:, 1]) * (a[:, 0] - p[:, 0])) / area
        lam = np.clip(np.stack([l0, l1, 1.0 - l0 - l1], axis=1), 0.0, 1.0)  # (K, 3)
        persp = lam / z[corners]  # perspective-correct weights
        bary = (persp / np.maximum(persp.sum(axis=1, keepdims=True), 1e-30)).astype(np.float32)
        uv = (bary[:, :, None] * self.corner_uvs[tri]).sum(axis=1)  # (K, 2)
        colour = sample_texture(self.texture, uv)  # (K, 3)
        n = (bary[:, :, None] * self.normals[corners]).sum(axis=1)  # (K, 3)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        right, down, forward = (np.asarray(c2w, np.float32)[:3, i] for i in range(3))
        n = np.where((n @ forward)[:, None] > 0, -n, n)  # light the side we see
        light = -forward - 0.6 * down - 0.3 * right  # the poster's headlight, a little above and left
        light /= np.linalg.norm(light)
        return colour * (0.35 + 0.65 * np.clip(n @ light, 0.0, 1.0))[:, None]


def _rasterise(screen: np.ndarray, depth: np.ndarray, corners: list[np.ndarray], keep: np.ndarray, w: int,
               h: int) -> np.ndarray:
    """Per pixel (h*w,) int64: the nearest triangle's key (float32 depth bits << 32 | triangle),
    or _EMPTY. screen (N, 2) vertex pixels, depth (N,) > 0, corners: the faces' three vertex
    index columns (M,) each, keep (M,) triangles to draw."""
    keys = np.full(w * h, _EMPTY, np.int64)
    a, b, c = (screen[i] for i in corners)  # (M, 2) each
    lo = np.ceil(np.minimum(np.minimum(a, b), c) - 0.5).astype(np.int64)  # (M, 2) first pixel centre inside
    hi = np.floor(np.maximum(np.maximum(a, b), c) - 0.5).astype(np.int64)
    keep = keep & (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1])
    keep &= (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < w) & (lo[:, 1] < h)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [w - 1, h - 1])
    box = hi - lo + 1  # (M, 2)
    small = keep & (box.max(axis=1) <= _TILE)
    window = 1 << np.ceil(np.log2(np.maximum(box, 1))).astype(np.int64)  # (M, 2)
    group = window[:, 0] * (2 * _TILE) + window[:, 1]
    tri_xy = _LazyCorners(screen, corners)
    tri_z = _LazyCorners(depth, corners)
    for g in np.unique(group[small]):
        ids = np.nonzero(small & (group == g))[0]
        _raster_items(ids, lo[ids], int(window[ids[0], 0]), int(window[ids[0], 1]), tri_xy, tri_z, w, h, keys)
    big = np.nonzero(keep & ~small)[0]
    if big.size:
        tiles = (box[big] + _TILE - 1) // _TILE  # (G, 2)
        count = tiles[:, 0] * tiles[:, 1]
        item = np.repeat(big, count)
        index = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        across = np.repeat(tiles[:, 0], count)
        origin = lo[item] + _TILE * np.stack([index % across, index // across], axis=1)
        _raster_items(item, origin, _TILE, _TILE, tri_xy, tri_z, w, h, keys)
    return keys


def _raster_items(tris: np.ndarray, origins: np.ndarray, kw: int, kh: int, tri_xy: _LazyCorners,
                  tri_z: _LazyCorners, w: int, h: int, keys: np.ndarray) -> None:
    per_batch = max(1, _BATCH_FRAGMENTS // (kw * kh))
    dx = np.arange(kw, dtype=np.float32)[None, None, :]  # (1, 1, kw)
    dy = np.arange(kh, dtype=np.float32)[None, :, None]  # (1, kh, 1)
    for start in range(0, len(tris), per_batch):
        batch, origin = tris[start:start + per_batch], origins[start:start + per_batch]
        v = (tri_xy[batch] - origin[:, None, :] - 0.5).astype(np.float32)  # (B, 3, 2) from pixel centres
        x0, y0, x1, y1, x2, y2 = (v[:, i // 2, i % 2, None, None] for i in range(6))  # (B, 1, 1)
        area = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        ok = np.abs(area) > 1e-8
        inv = np.where(ok, 1.0 / np.where(ok, area, 1.0), 0.0).astype(np.float32)
        l0 = ((y1 - y2) * inv) * (dx - x2) + ((x2 - x1) * inv) * (dy - y2)  # (B, kh, kw)
        l1 = ((y2 - y0) * inv) * (dx - x2) + ((x0 - x2) * inv) * (dy - y2)
        l2 = 1.0 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & ok
        b, iy, ix = np.nonzero(inside)
        if b.size == 0:
            continue
        px, py = origin[b, 0] + ix, origin[b, 1] + iy
        on = (px < w) & (py < h)
        b, px, py = b[on], px[on], py[on]
        zt = tri_z[batch][b]  # (F, 3)
        inv_z = l0[inside][on] / zt[:, 0] + l1[inside][on] / zt[:, 1] + l2[inside][on] / zt[:, 2]
        depth = (1.0 / np.maximum(inv_z, 1e-30)).astype(np.float32)
        key = (depth.view(np.int32).astype(np.int64) << 32) | batch[b]
        np.minimum.at(keys, py * w + px, key)


class _LazyCorners:
    """``values[faces]`` for the triangles asked for, without building it for every triangle."""

    def __init__(self, values: np.ndarray, corners: list[np.ndarray]) -> None:
        self.values, self.corners = values, corners

    def __getitem__(self, tris: np.ndarray) -> np.ndarray:
        return np.stack([self.values[c[tris]] for c in self.corners], axis=1)
