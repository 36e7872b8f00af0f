"""Generated training objects: random compositions of primitives with random textures.

An object is 1-4 primitives (ellipsoids, boxes, vertical cylinders, each turned about the vertical)
in metres, world Y up, standing on y = 0. Its signed distance and colour are defined everywhere,
so the unseen truth is exact: occupancy anywhere, colour anywhere near the surface. A view is
rendered by sphere tracing from a camera above the ground looking at the object: RGB (albedo
times a soft light) and metric depth, OpenCV camera (x right, y down, z forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SPHERE, BOX, CYLINDER = 0, 1, 2
PLAIN, STRIPES, CHECKER = 0, 1, 2


@dataclass(frozen=True)
class GeneratedObject:
    kind: torch.Tensor  # [K] int
    centre: torch.Tensor  # [K, 3] metres
    half: torch.Tensor  # [K, 3] half sizes (radii) in metres
    yaw: torch.Tensor  # [K] radians about +Y
    colour_a: torch.Tensor  # [K, 3] 0..1
    colour_b: torch.Tensor  # [K, 3]
    pattern: torch.Tensor  # [K] int
    frequency: torch.Tensor  # [K] stripes per metre (radians)

    def _local(self, p: torch.Tensor) -> torch.Tensor:
        d = p[:, None, :] - self.centre[None]  # [N, K, 3]
        c, s = torch.cos(self.yaw), torch.sin(self.yaw)
        x = c * d[..., 0] - s * d[..., 2]
        z = s * d[..., 0] + c * d[..., 2]
        return torch.stack([x, d[..., 1], z], dim=-1)

    def _distances(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self._local(p)
        h = self.half[None]
        k0 = (q / h).norm(dim=-1)
        k1 = (q / h**2).norm(dim=-1).clamp_min(1e-9)
        ellipsoid = k0 * (k0 - 1) / k1
        b = q.abs() - h
        box = b.clamp_min(0).norm(dim=-1) + b.max(dim=-1).values.clamp_max(0)
        radial = torch.stack([q[..., [0, 2]].norm(dim=-1) - h[..., 0], q[..., 1].abs() - h[..., 1]], dim=-1)
        cylinder = radial.clamp_min(0).norm(dim=-1) + radial.max(dim=-1).values.clamp_max(0)
        kind = self.kind[None].expand_as(ellipsoid)
        each = torch.where(kind == SPHERE, ellipsoid, torch.where(kind == BOX, box, cylinder))
        return each, q

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        """Signed distance in metres at points [N, 3] (negative inside)."""
        return self._distances(p)[0].min(dim=1).values

    def colour(self, p: torch.Tensor) -> torch.Tensor:
        """Albedo [N, 3] of the nearest primitive's texture at points [N, 3]."""
        each, q = self._distances(p)
        k = each.argmin(dim=1)
        local = q[torch.arange(len(p)), k]
        f = self.frequency[k][:, None]
        stripes = torch.sin(local[:, 1:2] * f) > 0
        checker = (torch.sin(local * f).prod(dim=-1, keepdim=True)) > 0
        pattern = self.pattern[k][:, None]
        use_b = torch.where(pattern == STRIPES, stripes, torch.where(pattern == CHECKER, checker,
                                                                     torch.zeros_like(stripes)))
        return torch.where(use_b, self.colour_b[k], self.colour_a[k])

    def normal(self, p: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        offsets = torch.eye(3, dtype=p.dtype) * eps
        grad = torch.stack([self.sdf(p + o) - self.sdf(p - o) for o in offsets], dim=-1)
        return grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """An axis-aligned box around the object (loose for turned primitives)."""
        reach = self.half.norm(dim=-1, keepdim=True).expand(-1, 3).clone()
        reach[:, 1] = self.half[:, 1]
        return ((self.centre - reach).min(0).values.numpy().astype(np.float64),
                (self.centre + reach).max(0).values.numpy().astype(np.float64))


def random_object(rng: np.random.Generator) -> GeneratedObject:
    """1-4 primitives: one main body 8-30 cm across and smaller parts attached to it."""
    n = int(rng.integers(1, 5))
    kind = rng.integers(0, 3, n)
    half = np.empty((n, 3))
    centre = np.zeros((n, 3))
    half[0] = rng.uniform(0.04, 0.15, 3)
    for i in range(1, n):
        parent = int(rng.integers(0, i))
        half[i] = half[parent] * rng.uniform(0.3, 0.8, 3)
        direction = rng.normal(size=3)
        direction[1] = abs(direction[1]) * rng.choice([-0.3, 1.0])
        direction /= np.linalg.norm(direction) + 1e-12
        centre[i] = centre[parent] + direction * half[parent] * rng.uniform(0.6, 1.0)
    centre[:, 1] -= (centre[:, 1] - half[:, 1]).min()  # the lowest point on the ground
    colour_a = rng.uniform(0.05, 0.95, (n, 3))
    colour_b = np.clip(colour_a + rng.choice([-1, 1], (n, 3)) * rng.uniform(0.3, 0.6, (n, 3)), 0, 1)
    t = torch.tensor
    return GeneratedObject(
        kind=t(kind, dtype=torch.long), centre=t(centre, dtype=torch.float32),
        half=t(half, dtype=torch.float32), yaw=t(rng.uniform(0, math.pi, n), dtype=torch.float32),
        colour_a=t(colour_a, dtype=torch.float32), colour_b=t(colour_b, dtype=torch.float32),
        pattern=t(rng.integers(0, 3, n), dtype=torch.long),
        frequency=t(rng.uniform(30, 120, n), dtype=torch.float32))


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    c2w: np.ndarray  # 4x4 OpenCV camera-to-world


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def random_camera(rng: np.random.Generator, obj: GeneratedObject, size: int = 128) -> Camera:
    """A camera 5-50 degrees above the ground, far enough that the object fills about half the view."""
    lo, hi = obj.bounds()
    target = (lo + hi) / 2 + rng.normal(0, 0.01, 3)
    radius = float(np.linalg.norm(hi - lo)) / 2
    fov = math.radians(rng.uniform(50, 65))
    distance = radius / math.tan(fov / 2) * rng.uniform(1.0, 1.4)
    azimuth, elevation = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(5, 50))
    eye = target + distance * np.array([math.cos(elevation) * math.cos(azimuth), math.sin(elevation),
                                        math.cos(elevation) * math.sin(azimuth)])
    f = size / 2 / math.tan(fov / 2)
    return Camera(size, size, f, f, size / 2, size / 2, look_at(eye, target))


def render(obj: GeneratedObject, cam: Camera, steps: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Sphere-traced RGB [H, W, 3] uint8 and depth [H, W] metres (0 where the ray misses)."""
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    d_cam = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1).reshape(-1, 3)
    norm = np.linalg.norm(d_cam, axis=1)
    dirs = (d_cam / norm[:, None]) @ cam.c2w[:3, :3].T
    origin = cam.c2w[:3, 3]
    lo, hi = obj.bounds()
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2 + 1e-3
    along = dirs @ (centre - origin)  # rays that miss the bounding sphere are never traced
    miss2 = np.linalg.norm(origin - centre) ** 2 - along**2
    todo = np.nonzero(miss2 < radius**2)[0]
    t_all = np.full(len(dirs), np.inf)
    t = torch.tensor(np.maximum(along[todo] - np.sqrt(np.maximum(radius**2 - miss2[todo], 0)), 0),
                     dtype=torch.float32)
    t_exit = torch.tensor(along[todo] + radius, dtype=torch.float32)
    d_t = torch.tensor(dirs[todo], dtype=torch.float32)
    o_t = torch.tensor(origin, dtype=torch.float32)
    active = torch.arange(len(todo))
    for _ in range(steps):
        if len(active) == 0:
            break
        d = obj.sdf(o_t + d_t[active] * t[active, None])
        t[active] = t[active] + d
        keep = (d.abs() > 2e-4) & (t[active] < t_exit[active])
        active = active[keep]
    p = o_t + d_t * t[:, None]
    hit = (obj.sdf(p).abs() < 1e-3) & (t < t_exit)
    t_all[todo[hit.numpy()]] = t[hit].numpy()
    rgb = np.zeros((len(dirs), 3), np.float32)
    if hit.any():
        ph = p[hit]
        light = torch.tensor([0.3, 0.9, 0.2]) / math.sqrt(0.94)
        shade = 0.55 + 0.45 * (obj.normal(ph) @ light).clamp_min(0)
        rgb[todo[hit.numpy()]] = (obj.colour(ph) * shade[:, None]).numpy()
    depth = np.where(np.isfinite(t_all), t_all / norm, 0.0).reshape(cam.height, cam.width)
    image = (rgb.reshape(cam.height, cam.width, 3) * 255).round().clip(0, 255).astype(np.uint8)
    return image, depth.astype(np.float32)


def surface_points(obj: GeneratedObject, n: int, rng: np.random.Generator) -> torch.Tensor:
    """About ``n`` points on the object's surface [M, 3] (uniform in its box, projected onto it)."""
    lo, hi = obj.bounds()
    pad = 0.02
    p = torch.tensor(rng.uniform(lo - pad, hi + pad, (n * 3, 3)), dtype=torch.float32)
    for _ in range(4):
        p = p - obj.sdf(p)[:, None] * obj.normal(p)
    p = p[obj.sdf(p).abs() < 5e-4]
    return p[:n]
