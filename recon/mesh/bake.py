"""Bake colour from posed photos into a texture atlas.

For every texel: its 3D point and normal; for every photo: is the point in the frame, facing the
camera and not hidden (z-buffer from the mesh by ray casting); a weight from the projected
resolution (cos(angle) * focal / distance)² that fades to zero near depth edges; the top-k views
are blended by weight. Texels no photo sees and the gutters between charts are filled by a few
dilation steps (seam padding) and then push-pull from the surrounding colours.
"""

from __future__ import annotations

import cv2
import numpy as np
import open3d as o3d

from core.capture import Camera
from core.errors import InputError
from core.progress import CancelToken, Progress
from recon.export.mesh_data import TexturedMesh
from recon.mesh.raycast import depth_buffer, make_scene, sample_bilinear
from recon.mesh.uv import UVMesh
from recon.mesh.views import PosedView

_MISS = np.iinfo(np.uint32).max


def rasterize_uv(uv_mesh: UVMesh, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which triangle covers each texel centre: texel rows, cols (T,), face ids (T,), barycentric
    weights (T, 3). Done by casting one ray per texel at the flattened UV layout."""
    flat = np.zeros((len(uv_mesh.uvs), 3), np.float32)
    flat[:, 0] = uv_mesh.uvs[:, 0] * size
    flat[:, 1] = (1.0 - uv_mesh.uvs[:, 1]) * size
    scene = make_scene(flat, uv_mesh.faces)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # (S, S)
    rays = np.zeros((size, size, 6), np.float32)
    rays[..., 0], rays[..., 1], rays[..., 2], rays[..., 5] = xs, ys, 1.0, -1.0
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    prim = hits["primitive_ids"].numpy().copy().reshape(-1)
    inside = np.flatnonzero(prim != _MISS)
    b = hits["primitive_uvs"].numpy().copy().reshape(-1, 2)[inside]  # weights of corners 1 and 2
    bary = np.stack([1.0 - b[:, 0] - b[:, 1], b[:, 0], b[:, 1]], axis=1)
    return inside, prim[inside].astype(np.int64), bary.astype(np.float32)


def _edge_fade(zbuf: np.ndarray, ramp_px: float) -> np.ndarray:
    """0 at depth discontinuities and background, rising to 1 over ``ramp_px`` pixels (H, W)."""
    finite = np.isfinite(zbuf)
    z = np.where(finite, zbuf, 0).astype(np.float32)
    zmax = cv2.dilate(z, np.ones((3, 3), np.uint8))
    zmin = cv2.erode(np.where(finite, z, np.float32(np.inf)), np.ones((3, 3), np.uint8))
    edge = ~finite | (zmax - zmin > 0.02 * np.where(finite, z, 1))
    dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(dist / ramp_px, 0.0, 1.0)


def _buffer_camera(camera: Camera, max_side: int) -> Camera:
    s = min(1.0, max_side / max(camera.width, camera.height))
    return camera.scaled(max(1, round(camera.width * s)), max(1, round(camera.height * s)))


def fill_texture(colour: np.ndarray, valid: np.ndarray, dilate_px: int = 4) -> np.ndarray:
    """Fill texels where ``valid`` is False: ``dilate_px`` rings of neighbour averages (seam
    padding), then push-pull for the rest. colour (H, W, 3) float32, valid (H, W) bool."""
    w = valid.astype(np.float32)
    c = colour * w[..., None]
    for _ in range(dilate_px):
        sum_c = cv2.boxFilter(c, -1, (3, 3), normalize=False)
        sum_w = cv2.boxFilter(w, -1, (3, 3), normalize=False)
        grow = (w == 0) & (sum_w > 0)
        c[grow] = sum_c[grow] / sum_w[grow][:, None]
        w[grow] = 1.0
    if w.all() or not w.any():
        return c if w.any() else np.full_like(colour, 128.0)
    levels = [(c, w)]
    while min(levels[-1][1].shape) > 1 and not levels[-1][1].all():
        pc, pw = levels[-1]
        h, wd = max(1, pw.shape[0] // 2), max(1, pw.shape[1] // 2)
        levels.append((cv2.resize(pc, (wd, h), interpolation=cv2.INTER_AREA),
                       cv2.resize(pw, (wd, h), interpolation=cv2.INTER_AREA)))
    pc, pw = levels[-1]
    filled = pc / np.maximum(pw, 1e-8)[..., None]
    for pc, pw in reversed(levels[:-1]):
        up = cv2.resize(filled, (pw.shape[1], pw.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = pc / np.maximum(pw, 1e-8)[..., None]
        filled = np.where((pw > 0)[..., None], own, up)
    return filled


def bake_texture(
    uv_mesh: UVMesh,
    views: list[PosedView],
    size: int = 2048,
    top_k: int = 3,
    visibility_side: int = 640,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> TexturedMesh:
    """Bake a ``size``² texture for ``uv_mesh`` from ``views``; returns the textured mesh."""
    views = [v for v in views if v.image is not None]
    if not views:
        raise InputError("no posed photos to bake colour from", "frames")
    progress = progress or Progress("bake")
    texel_index, face, bary = rasterize_uv(uv_mesh, size)
    v = uv_mesh.vertices
    tri = v[uv_mesh.faces[face]]  # (T, 3, 3)
    points = np.einsum("tk,tkd->td", bary, tri)  # (T, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    del tri
    scene = make_scene(uv_mesh.vertices, uv_mesh.faces)

    n = len(points)
    best_w = np.zeros((n, top_k), np.float32)  # (T, k)
    best_c = np.zeros((n, top_k, 3), np.float32)  # (T, k, 3)
    for i, view in enumerate(views):
        if cancel is not None:
            cancel.check()
        cam_b = _buffer_camera(view.camera, visibility_side)
        zbuf = depth_buffer(scene, cam_b, view.c2w)  # (Hb, Wb)
        fade = _edge_fade(zbuf, ramp_px=3.0)
        px, pin, z = view.project(points)
        h, w = view.image.shape[:2]
        ok = (z > 1e-6) & (px[:, 0] > -0.5) & (px[:, 0] < w - 0.5) & (px[:, 1] > -0.5) & (px[:, 1] < h - 0.5)
        to_cam = view.center - points
        dist = np.linalg.norm(to_cam, axis=1)
        cos = np.einsum("td,td->t", normals, to_cam) / np.maximum(dist, 1e-12)
        ok &= cos > 0.05
        sx, sy = cam_b.width / view.camera.width, cam_b.height / view.camera.height
        bx = np.clip(np.rint((pin[:, 0] + 0.5) * sx - 0.5), 0, cam_b.width - 1).astype(np.int64)
        by = np.clip(np.rint((pin[:, 1] + 0.5) * sy - 0.5), 0, cam_b.height - 1).astype(np.int64)
        zb = zbuf[by, bx]
        tol = 0.01 * z + 3.0 * z / cam_b.fx
        ok &= z <= zb + tol
        if view.mask is not None:
            mx = np.clip(np.rint(px[:, 0]), 0, w - 1).astype(np.int64)
            my = np.clip(np.rint(px[:, 1]), 0, h - 1).astype(np.int64)
            ok &= view.mask[my, mx]
        idx = np.flatnonzero(ok)
        weight = (cos[idx] * view.camera.fx / dist[idx]) ** 2 * fade[by[idx], bx[idx]]
        colour = sample_bilinear(view.image, px[idx, 0], px[idx, 1])  # (V, 3)
        slot = np.argmin(best_w[idx], axis=1)
        better = weight > best_w[idx, slot]
        rows, slot = idx[better], slot[better]
        best_w[rows, slot] = weight[better]
        best_c[rows, slot] = colour[better]
        progress.update((i + 1) / len(views), f"baked view {i + 1}/{len(views)}")

    total = best_w.sum(axis=1)  # (T,)
    seen = total > 0
    blended = np.einsum("tk,tkc->tc", best_w[seen], best_c[seen]) / total[seen, None]
    colour = np.zeros((size * size, 3), np.float32)
    valid = np.zeros(size * size, bool)
    colour[texel_index[seen]] = blended
    valid[texel_index[seen]] = True
    texture = fill_texture(colour.reshape(size, size, 3), valid.reshape(size, size))
    texture = np.clip(np.rint(texture), 0, 255).astype(np.uint8)
    return TexturedMesh(uv_mesh.vertices, uv_mesh.faces, uv_mesh.uvs, texture)


def bake_vertex_colors(uv_mesh: UVMesh, colors: np.ndarray | None, size: int = 2048) -> TexturedMesh:
    """A texture from per-vertex colours (N_in, 3) in 0..1 of the unwrapped mesh's source
    vertices, for captures without colour photos; uniform grey when there are none."""
    if colors is None:
        texture = np.full((size, size, 3), 128, np.uint8)
        return TexturedMesh(uv_mesh.vertices, uv_mesh.faces, uv_mesh.uvs, texture)
    texel_index, face, bary = rasterize_uv(uv_mesh, size)
    corner_rgb = colors[uv_mesh.source_vertex[uv_mesh.faces[face]]] * 255.0  # (T, 3, 3)
    colour = np.zeros((size * size, 3), np.float32)
    valid = np.zeros(size * size, bool)
    colour[texel_index] = np.einsum("tk,tkc->tc", bary, corner_rgb)
    valid[texel_index] = True
    texture = fill_texture(colour.reshape(size, size, 3), valid.reshape(size, size))
    texture = np.clip(np.rint(texture), 0, 255).astype(np.uint8)
    return TexturedMesh(uv_mesh.vertices, uv_mesh.faces, uv_mesh.uvs, texture)
