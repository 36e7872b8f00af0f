"""A synthetic object of known geometry and colour for the mesh tests, rendered by ray casting.

The object is a box (0.20 x 0.12 x 0.16 m) standing on y = 0 in its canonical frame (Y up), with
a smooth colour pattern defined on 3D points; photos are unlit renders of that pattern from an
orbit of OpenCV cameras around it.
"""

from __future__ import annotations

import cv2
import numpy as np
import open3d as o3d
import trimesh

from core.capture import Camera
from recon.mesh.raycast import camera_rays, make_scene
from recon.mesh.types import Mesh
from recon.mesh.views import PosedView

BOX_SIZE = np.array([0.20, 0.12, 0.16])
BACKGROUND = np.array([40.0, 40.0, 40.0])


def box_mesh(subdivisions: int = 3) -> Mesh:
    """The box, standing on y = 0, centred on x/z, subdivided into small triangles."""
    box = trimesh.creation.box(extents=BOX_SIZE)
    v, f = box.vertices, box.faces
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    v = v + np.array([0.0, BOX_SIZE[1] / 2, 0.0])
    return Mesh(v, f)


def colour_at(points: np.ndarray) -> np.ndarray:
    """The object's colour (P, 3) in 0..255 at world points (P, 3) of the canonical frame."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    r = 128 + 90 * np.sin(2 * np.pi * x / 0.11) * np.cos(2 * np.pi * y / 0.13)
    g = 128 + 90 * np.sin(2 * np.pi * (y + z) / 0.09)
    b = 128 + 90 * np.cos(2 * np.pi * (x - z) / 0.12)
    return np.stack([r, g, b], axis=1)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """OpenCV camera-to-world (x right, y down, z forward) at ``eye`` looking at ``target``."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def orbit_poses(n: int, radius: float = 0.55, heights: tuple[float, ...] = (0.15, 0.35),
                phase: float = 0.0) -> list[np.ndarray]:
    target = np.array([0.0, BOX_SIZE[1] / 2, 0.0])
    poses = []
    for i in range(n):
        a = 2 * np.pi * i / n + phase
        h = heights[i % len(heights)]
        poses.append(look_at(np.array([radius * np.sin(a), h, radius * np.cos(a)]), target))
    return poses


def camera(width: int = 320, height: int = 240, f: float = 300.0) -> Camera:
    return Camera(width, height, f, f, width / 2, height / 2)


def render_object(mesh: Mesh, cam: Camera, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo: rgb (H, W, 3) uint8 with the analytic colour, and the object mask (H, W)."""
    scene = make_scene(mesh.vertices, mesh.faces)
    rays = camera_rays(cam, c2w)
    t = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy().copy()
    hit = np.isfinite(t)
    pts = rays[..., :3] + rays[..., 3:] * np.where(hit, t, 0)[..., None]
    rgb = np.where(hit[..., None], colour_at(pts.reshape(-1, 3)).reshape(*t.shape, 3), BACKGROUND)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8), hit


def transform_views(
    views: list[PosedView], rot: np.ndarray, trans: np.ndarray, scale: float
) -> list[PosedView]:
    """The same photos with the world moved by p -> scale * rot @ p + trans."""
    out = []
    for v in views:
        c2w = np.eye(4)
        c2w[:3, :3] = rot @ v.c2w[:3, :3]
        c2w[:3, 3] = scale * rot @ v.c2w[:3, 3] + trans
        out.append(PosedView(v.id, v.image, v.camera, c2w, v.mask))
    return out


def orbit_views(mesh: Mesh, n: int = 12, cam: Camera | None = None, phase: float = 0.0) -> list[PosedView]:
    cam = cam or camera()
    views = []
    for i, c2w in enumerate(orbit_poses(n, phase=phase)):
        rgb, _ = render_object(mesh, cam, c2w)
        views.append(PosedView(f"v{i}", rgb, cam, c2w))
    return views


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    err = (a.astype(np.float64) - b.astype(np.float64))[mask]
    return float(10 * np.log10(255.0**2 / max(np.mean(err**2), 1e-12)))


def marker_plane_views(scale: float, marker_size: float = 0.10, n: int = 3) -> list[PosedView]:
    """Photos of a DICT_4X4_50 marker (id 7) lying on the ground plane y = 0 at the origin, in a
    world that is ``scale`` times the metric one (as an unscaled SfM world would be)."""
    side_px = 240
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
    marker = cv2.aruco.generateImageMarker(dictionary, 7, side_px)
    cam = Camera(640, 480, 550.0, 550.0, 320.0, 240.0)
    views = []
    for i in range(n):
        a = np.radians(-25 + 25 * i)
        eye = np.array([0.35 * np.sin(a), 0.40, 0.35 * np.cos(a)])
        c2w = look_at(eye, np.zeros(3))
        rays = camera_rays(cam, c2w).astype(np.float64)
        o, d = rays[..., :3], rays[..., 3:]
        t = -o[..., 1] / d[..., 1]
        p = o + d * t[..., None]  # hit on y = 0
        # marker image: columns along +x, rows along +z, centred at the origin
        u = (p[..., 0] / marker_size + 0.5) * side_px - 0.5
        v = (p[..., 2] / marker_size + 0.5) * side_px - 0.5
        on = (u >= -0.5) & (u < side_px - 0.5) & (v >= -0.5) & (v < side_px - 0.5)
        grey = cv2.remap(marker.astype(np.float32), u.astype(np.float32), v.astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=235.0)
        grey = np.where(on, grey, 235.0)
        rgb = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        scaled = c2w.copy()
        scaled[:3, 3] *= scale
        views.append(PosedView(f"m{i}", rgb, cam, scaled))
    return views
