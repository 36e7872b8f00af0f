"""A poster image of a textured mesh: a small numpy z-buffer rasteriser, 3/4 view, headlight.

Used for the share page next to the USDZ (AR Quick Look's link preview). No GPU, no GL.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from recon.export.mesh_data import TexturedMesh
from recon.export.texture_io import sample_texture

# Fragments per rasterisation batch: bounds memory at roughly 100 bytes per fragment.
_BATCH_FRAGMENTS = 1 << 21
# Triangles whose screen bounding box is wider than this are rasterised tile by tile.
_TILE = 32


def render_poster_png(mesh: TexturedMesh, size: int = 512) -> bytes:
    """PNG bytes (RGBA, transparent background) of ``mesh`` seen from the front-right, above."""
    buf = io.BytesIO()
    Image.fromarray(render_poster(mesh, size)).save(buf, "PNG")
    return buf.getvalue()


def render_poster(
    mesh: TexturedMesh,
    size: int = 512,
    *,
    azimuth_deg: float = 35.0,
    elevation_deg: float = 25.0,
    fov_deg: float = 35.0,
    supersample: int = 2,
) -> np.ndarray:
    """(size, size, 4) uint8 RGBA render of ``mesh``; alpha is 0 where no surface is seen."""
    s = size * supersample
    eye, right, up, forward = _look_at(mesh, azimuth_deg, elevation_deg, fov_deg)
    focal = 0.5 * s / math.tan(math.radians(fov_deg) / 2)

    rel = mesh.vertices.astype(np.float64) - eye  # (N, 3)
    cam = np.stack([rel @ right, rel @ up, rel @ forward], axis=1)  # (N, 3) x right, y up, z depth
    depth = np.maximum(cam[:, 2], 1e-9)  # (N,)
    screen = np.stack([0.5 * s + focal * cam[:, 0] / depth,
                       0.5 * s - focal * cam[:, 1] / depth], axis=1)  # (N, 2) pixels, y down

    tri_id, bary = _rasterise(screen[mesh.faces], depth[mesh.faces], s)  # (s*s,), (s*s, 3)
    covered = tri_id >= 0  # (s*s,)
    rgba = np.zeros((s * s, 4), np.float32)
    if covered.any():
        t = tri_id[covered]  # (K,)
        b = bary[covered]  # (K, 3)
        uv = (b[:, :, None] * mesh.corner_uvs()[t]).sum(axis=1)  # (K, 2)
        colour = sample_texture(mesh.texture, uv)  # (K, 3)
        normals = mesh.vertex_normals()[mesh.faces[t]]  # (K, 3, 3)
        n = (b[:, :, None] * normals).sum(axis=1)  # (K, 3)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        n = np.where((n @ forward)[:, None] > 0, -n, n)  # light the side we see
        light = -forward + 0.6 * up - 0.3 * right
        light /= np.linalg.norm(light)
        shade = 0.35 + 0.65 * np.clip(n @ light, 0.0, 1.0)  # (K,)
        rgba[covered, :3] = colour * shade[:, None]
        rgba[covered, 3] = 255.0
    return _downsample(rgba.reshape(s, s, 4), supersample)


def _look_at(
    mesh: TexturedMesh, azimuth_deg: float, elevation_deg: float, fov_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = mesh.bounds()
    centre = 0.5 * (lo + hi)
    radius = max(float(np.linalg.norm(mesh.vertices.astype(np.float64) - centre, axis=1).max()), 1e-6)
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    direction = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
    eye = centre + direction * radius / math.sin(math.radians(fov_deg) / 2) * 1.15
    forward = (centre - eye) / np.linalg.norm(centre - eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return eye, right, up, forward


def _rasterise(tri_xy: np.ndarray, tri_z: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest triangle per pixel. tri_xy (M, 3, 2) pixels, tri_z (M, 3) depth > 0.

    Returns tri_id (s*s,) int64 (-1 = empty) and perspective-correct barycentrics (s*s, 3).
    Small triangles are grouped by bounding-box size so each group tests a kw x kh pixel window
    (powers of two); big ones are cut into tiles. Either way the work stays close to the pixels
    actually covered.
    """
    zbuf = np.full(s * s, np.inf, np.float32)
    tri_id = np.full(s * s, -1, np.int64)
    bary = np.zeros((s * s, 3), np.float32)

    lo = np.floor(tri_xy.min(axis=1) - 0.5).astype(np.int64)  # (M, 2) first pixel whose centre may be in
    hi = np.ceil(tri_xy.max(axis=1) - 0.5).astype(np.int64)  # (M, 2)
    visible = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < s) & (lo[:, 1] < s)
    lo = np.clip(lo, 0, s - 1)
    hi = np.clip(hi, 0, s - 1)
    box = hi - lo + 1  # (M, 2)
    small = visible & (box.max(axis=1) <= _TILE)
    window = 1 << np.ceil(np.log2(np.maximum(box, 1))).astype(np.int64)  # (M, 2) power of two >= box
    key = window[:, 0] * (4 * s) + window[:, 1]
    for k in np.unique(key[small]):
        ids = np.nonzero(small & (key == k))[0]
        kw, kh = int(window[ids[0], 0]), int(window[ids[0], 1])
        _raster_items(ids, lo[ids], kw, kh, tri_xy, tri_z, s, zbuf, tri_id, bary)

    # Big triangles: one work item per _TILE x _TILE tile of their bounding box.
    big = np.nonzero(visible & ~small)[0]
    if big.size:
        tiles = (box[big] + _TILE - 1) // _TILE  # (G, 2) tiles across, down
        count = tiles[:, 0] * tiles[:, 1]  # (G,)
        item_tri = np.repeat(big, count)  # (I,)
        first = np.repeat(np.cumsum(count) - count, count)
        index = np.arange(count.sum()) - first  # tile number inside its triangle
        across = np.repeat(tiles[:, 0], count)
        origin = lo[item_tri] + _TILE * np.stack([index % across, index // across], axis=1)  # (I, 2)
        _raster_items(item_tri, origin, _TILE, _TILE, tri_xy, tri_z, s, zbuf, tri_id, bary)
    return tri_id, bary


def _raster_items(
    tris: np.ndarray, origins: np.ndarray, kw: int, kh: int, tri_xy: np.ndarray, tri_z: np.ndarray, s: int,
    zbuf: np.ndarray, tri_id: np.ndarray, bary: np.ndarray,
) -> None:
    """Rasterise triangle ``tris[i]`` in the kw x kh window at ``origins[i]``, in batches."""
    per_batch = max(1, _BATCH_FRAGMENTS // (kw * kh))
    for start in range(0, len(tris), per_batch):
        end = start + per_batch
        _raster_batch(tris[start:end], origins[start:end], kw, kh, tri_xy, tri_z, s, zbuf, tri_id, bary)


def _raster_batch(
    batch: np.ndarray, origin: np.ndarray, kw: int, kh: int, tri_xy: np.ndarray, tri_z: np.ndarray, s: int,
    zbuf: np.ndarray, tri_id: np.ndarray, bary: np.ndarray,
) -> None:
    """batch (B,) triangle ids, origin (B, 2) top-left pixel of each one's window."""
    v = (tri_xy[batch] - origin[:, None, :] - 0.5).astype(np.float32)  # (B, 3, 2) relative to pixel centres
    x0, y0, x1, y1, x2, y2 = (v[:, i // 2, i % 2, None, None] for i in range(6))  # each (B, 1, 1)
    denom = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)  # (B, 1, 1) twice the signed area
    ok = np.abs(denom) > 1e-8
    inv = np.where(ok, 1.0 / np.where(ok, denom, 1.0), 0.0).astype(np.float32)
    dx = np.arange(kw, dtype=np.float32)[None, None, :]  # (1, 1, kw)
    dy = np.arange(kh, dtype=np.float32)[None, :, None]  # (1, kh, 1)
    l0 = ((y1 - y2) * inv) * (dx - x2) + ((x2 - x1) * inv) * (dy - y2)  # (B, kh, kw)
    l1 = ((y2 - y0) * inv) * (dx - x2) + ((x0 - x2) * inv) * (dy - y2)
    l2 = 1.0 - l0 - l1
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & ok
    b_idx, iy, ix = np.nonzero(inside)
    if b_idx.size == 0:
        return
    px = origin[b_idx, 0] + ix
    py = origin[b_idx, 1] + iy
    keep = (px < s) & (py < s)
    b_idx, px, py = b_idx[keep], px[keep], py[keep]
    lam = np.stack([l0[inside][keep], l1[inside][keep], l2[inside][keep]], axis=1)  # (F, 3)
    w = lam / tri_z[batch][b_idx].astype(np.float32)  # (F, 3) l_i / z_i
    inv_depth = w.sum(axis=1)  # (F,)
    pix = py * s + px  # (F,)
    order = np.lexsort((-inv_depth, pix))  # by pixel, nearest (largest 1/z) first
    first = np.ones(order.size, bool)
    first[1:] = pix[order[1:]] != pix[order[:-1]]
    sel = order[first]
    p = pix[sel]
    depth = 1.0 / inv_depth[sel]
    nearer = depth < zbuf[p]
    sel, p = sel[nearer], p[nearer]
    zbuf[p] = depth[nearer]
    tri_id[p] = batch[b_idx[sel]]
    bary[p] = w[sel] / inv_depth[sel, None]


def _downsample(rgba: np.ndarray, factor: int) -> np.ndarray:
    """(S, S, 4) float 0..255 -> (S/f, S/f, 4) uint8, averaging colour weighted by alpha."""
    s = rgba.shape[0] // factor
    blocks = rgba.reshape(s, factor, s, factor, 4)
    alpha = blocks[..., 3:].mean(axis=(1, 3))  # (s, s, 1)
    colour = (blocks[..., :3] * blocks[..., 3:]).mean(axis=(1, 3)) / np.maximum(alpha, 1e-6)
    out = np.concatenate([colour, alpha], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
