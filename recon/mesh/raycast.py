"""Ray casting against a mesh with open3d: depth buffers for visibility, and textured renders."""

from __future__ import annotations

import numpy as np
import open3d as o3d

from core.capture import Camera
from recon.export.mesh_data import TexturedMesh
from recon.mesh.types import Mesh


def make_scene(vertices: np.ndarray, faces: np.ndarray) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene


def camera_rays(camera: Camera, c2w: np.ndarray) -> np.ndarray:
    """Pinhole rays (H, W, 6) through pixel centres: origin and a direction whose camera z is 1,
    so the hit distance along it is the z-depth. Pixel (row i, column j) is the image point
    (j + 0.5, i + 0.5), the COLMAP convention of the capture format."""
    xs, ys = np.meshgrid(np.arange(camera.width) + 0.5, np.arange(camera.height) + 0.5)  # (H, W)
    ones = np.ones(xs.shape)
    d_cam = np.stack([(xs - camera.cx) / camera.fx, (ys - camera.cy) / camera.fy, ones], -1)  # (H, W, 3)
    d_world = d_cam @ np.asarray(c2w)[:3, :3].T  # (H, W, 3)
    origin = np.broadcast_to(np.asarray(c2w)[:3, 3], d_world.shape)
    return np.concatenate([origin, d_world], axis=-1).astype(np.float32)


def depth_buffer(scene: o3d.t.geometry.RaycastingScene, camera: Camera, c2w: np.ndarray) -> np.ndarray:
    """z-depth (H, W) float32 of the nearest surface, inf where the ray misses."""
    hits = scene.cast_rays(o3d.core.Tensor(camera_rays(camera, c2w)))
    return hits["t_hit"].numpy().copy()


def render_textured(mesh: TexturedMesh, camera: Camera, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unlit render of a textured mesh: rgb (H, W, 3) uint8 and hit mask (H, W) bool."""
    scene = make_scene(mesh.vertices, mesh.faces)
    hits = scene.cast_rays(o3d.core.Tensor(camera_rays(camera, c2w)))
    prim = hits["primitive_ids"].numpy().copy().astype(np.int64)  # (H, W)
    hit = prim != np.iinfo(np.uint32).max
    bary = hits["primitive_uvs"].numpy().copy()  # (H, W, 2): weights of corners 1 and 2
    corner_uv = mesh.corner_uvs()[np.where(hit, prim, 0)]  # (H, W, 3, 2)
    w1, w2 = bary[..., 0:1], bary[..., 1:2]
    uv = (1 - w1 - w2) * corner_uv[..., 0, :] + w1 * corner_uv[..., 1, :] + w2 * corner_uv[..., 2, :]
    h, w = mesh.texture.shape[:2]
    colour = sample_bilinear(mesh.texture, uv[..., 0] * w - 0.5, (1 - uv[..., 1]) * h - 0.5)
    rgb = np.where(hit[..., None], np.clip(np.rint(colour), 0, 255), 0).astype(np.uint8)
    return rgb, hit


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of image (H, W, C) at pixel coordinates x, y (any shape S; pixel centres at
    integers), clamped at the border. Returns (*S, C) float32."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None].astype(np.float32), (y - y0)[..., None].astype(np.float32)
    img = image.astype(np.float32) if image.dtype != np.float32 else image
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def mesh_scene(mesh: Mesh) -> o3d.t.geometry.RaycastingScene:
    return make_scene(mesh.vertices, mesh.faces)
