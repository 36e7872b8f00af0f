"""Software rendering of a Scene through an OrbitCamera: z-buffered triangles (the export poster's
rasteriser), depth-tested point splats, and frusta as screen-space line segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desktop.viewer.camera import OrbitCamera
from desktop.viewer.scene import Scene, ViewMesh, ViewPoints
from recon.export.poster import _rasterise  # the numpy z-buffer rasteriser the poster uses
from recon.export.texture_io import sample_texture

BACKGROUND_TOP = np.array([46, 50, 58], np.float32)
BACKGROUND_BOTTOM = np.array([22, 24, 28], np.float32)
NEAR = 1e-3


@dataclass(frozen=True, eq=False)
class Rendered:
    """rgb (H, W, 3) uint8; depth (H, W) float32 (inf = nothing); lines (S, 2, 2) screen pixels
    with flags (S,) bool: frusta to draw on top."""

    rgb: np.ndarray
    depth: np.ndarray
    lines: np.ndarray
    line_flags: np.ndarray
    covered: int  # pixels showing a mesh or point


def _background(width: int, height: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    rows = BACKGROUND_TOP * (1 - t) + BACKGROUND_BOTTOM * t  # (H, 1, 3)
    return np.repeat(rows, width, axis=1)  # (H, W, 3) float32


def _draw_mesh(mesh: ViewMesh, camera: OrbitCamera, rgb: np.ndarray, depth: np.ndarray) -> None:
    h, w = depth.shape
    s = max(w, h)
    screen, z = camera.project(mesh.vertices, w, h)  # (N, 2), (N,)
    screen += np.array([(s - w) / 2, (s - h) / 2])  # into the square buffer the rasteriser uses
    faces = mesh.faces
    keep = (z[faces] > NEAR).all(axis=1)  # (M,) drop faces crossing the near plane
    face_ids = np.nonzero(keep)[0]
    if face_ids.size == 0:
        return
    tri_id, bary = _rasterise(screen[faces[face_ids]], z[faces[face_ids]], s)  # (s*s,), (s*s, 3)
    tri_id = tri_id.reshape(s, s)[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w].ravel()
    bary = bary.reshape(s, s, 3)[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w].reshape(-1, 3)
    hit = tri_id >= 0  # (H*W,)
    if not hit.any():
        return
    f = face_ids[tri_id[hit]]  # (K,) mesh face of each covered pixel
    b = bary[hit]  # (K, 3)
    frag_z = (b * z[faces[f]]).sum(axis=1)  # (K,)
    flat_depth = depth.reshape(-1)
    nearer = frag_z < flat_depth[hit]
    pix = np.nonzero(hit)[0][nearer]
    f, b, frag_z = f[nearer], b[nearer], frag_z[nearer]
    if mesh.textured:
        uv = (b[:, :, None] * mesh.corner_uvs[f]).sum(axis=1)  # (K, 2)
        colour = sample_texture(mesh.texture, uv)  # (K, 3) 0..255
    elif mesh.vertex_colors is not None:
        colour = (b[:, :, None] * mesh.vertex_colors[faces[f]].astype(np.float32)).sum(axis=1)
    else:
        colour = np.full((len(f), 3), 200.0, np.float32)
    v = mesh.vertices.astype(np.float64)
    tri = v[faces[f]]  # (K, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (K, 3)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
    eye, right, up, forward = camera.basis()
    light = -forward + 0.5 * up - 0.3 * right
    light /= np.linalg.norm(light)
    shade = 0.45 + 0.55 * np.abs(normal @ light)  # (K,) two-sided: scans have open surfaces
    rgb.reshape(-1, 3)[pix] = colour * shade[:, None]
    flat_depth[pix] = frag_z


def _draw_points(points: ViewPoints, camera: OrbitCamera, rgb: np.ndarray, depth: np.ndarray,
                 radius: int) -> None:
    h, w = depth.shape
    screen, z = camera.project(points.points, w, h)  # (N, 2), (N,)
    px = np.floor(screen).astype(np.int64)  # (N, 2)
    ok = (z > NEAR) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return
    colors = (points.colors[idx].astype(np.float32) if points.colors is not None
              else np.full((idx.size, 3), 210.0, np.float32))
    order = np.argsort(-z[idx])  # far to near: nearer points overwrite
    idx, colors = idx[order], colors[order]
    flat_rgb, flat_depth = rgb.reshape(-1, 3), depth.reshape(-1)
    for dy in range(-radius + 1, radius):
        for dx in range(-radius + 1, radius):
            x, y = px[idx, 0] + dx, px[idx, 1] + dy
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            pix = y[inside] * w + x[inside]
            zz = z[idx][inside]
            front = zz <= flat_depth[pix]
            flat_rgb[pix[front]] = colors[inside][front]
            flat_depth[pix[front]] = zz[front]


def _frusta_lines(
    scene: Scene, camera: OrbitCamera, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    if not scene.frusta:
        return np.zeros((0, 2, 2)), np.zeros(0, bool)
    pts = scene.all_points()
    size = 0.06 * max(float(np.ptp(pts, axis=0).max()), 1e-3)
    segments = np.stack([f.segments(size) for f in scene.frusta])  # (F, 8, 2, 3)
    flags = np.repeat([f.flagged for f in scene.frusta], 8)  # (F*8,)
    seg = segments.reshape(-1, 3)
    screen, z = camera.project(seg, width, height)
    screen, z = screen.reshape(-1, 2, 2), z.reshape(-1, 2)
    front = (z > NEAR).all(axis=1)
    return screen[front], flags[front]


def render(scene: Scene, camera: OrbitCamera, width: int, height: int, *, point_radius: int = 2) -> Rendered:
    """Draw ``scene`` into a width x height image."""
    rgb = _background(width, height)  # (H, W, 3) float32
    depth = np.full((height, width), np.inf, np.float32)
    for mesh in scene.meshes:
        _draw_mesh(mesh, camera, rgb, depth)
    for points in scene.points:
        _draw_points(points, camera, rgb, depth, point_radius)
    lines, flags = _frusta_lines(scene, camera, width, height)
    out = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return Rendered(out, depth, lines, flags, int(np.isfinite(depth).sum()))
