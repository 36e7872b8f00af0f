"""A small procedural scene of known geometry, ray cast with numpy from an orbit of cameras.

The world frame is in metres with +Y up (as ARKit's), the ground is the plane y = 0, and the
object stands on it at the origin: a box (14 x 16 x 10 cm, x by y by z) with a ball
(radius 5.5 cm) rising out of its top, 25 cm tall in all (bounds 14 x 25 x 11 cm). A textured
ground disc (radius 35 cm) surrounds it; beyond is a featureless sky. Both carry solid procedural textures
(recon.sample.texture) lit by one distant light (Lambert + ambient, with the object's shadow on
the ground), so nothing but the camera changes between views.

Cameras are pinhole, poses are OpenCV camera-to-world (x right, y down, z forward). Pixel
(row i, column j) samples the image point (j + 0.5, i + 0.5), the COLMAP / nerfstudio
convention. Depth is z-depth along the optical axis in metres, 0 where a ray hits nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.capture import Camera
from recon.sample.texture import PlaneTexture, ground_albedo, object_albedo

BOX_MIN = np.array([-0.07, 0.0, -0.05])
BOX_MAX = np.array([0.07, 0.16, 0.05])
BALL_CENTER = np.array([0.0, 0.195, 0.0])
BALL_RADIUS = 0.055
GROUND_RADIUS_M = 0.35

OBJECT_HEIGHT_M = float(BALL_CENTER[1] + BALL_RADIUS)  # 0.25
OBJECT_BOUNDS = (  # (min corner, max corner): the ball is deeper (z) than the box
    tuple(float(v) for v in np.minimum(BOX_MIN, BALL_CENTER - BALL_RADIUS)),
    tuple(float(v) for v in np.maximum(BOX_MAX, BALL_CENTER + BALL_RADIUS)),
)
_BOUND_CENTER = (np.array(OBJECT_BOUNDS[0]) + np.array(OBJECT_BOUNDS[1])) / 2.0
_BOUND_RADIUS = float(np.linalg.norm(np.array(OBJECT_BOUNDS[1]) - _BOUND_CENTER)) + 1e-3
ORBIT_TARGET = np.array([0.0, OBJECT_HEIGHT_M / 2.0, 0.0])  # cameras look here

_LIGHT_DIR = np.array([0.4, 1.0, 0.3]) / np.linalg.norm([0.4, 1.0, 0.3])  # towards the light
_AMBIENT = 0.5
_GROUND_TEXEL_M = 0.001
_SKY_TOP = np.array([0.55, 0.7, 0.9])
_SKY_HORIZON = np.array([0.85, 0.88, 0.92])


@dataclass(frozen=True)
class RenderedView:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth_m: np.ndarray  # (H, W) float32, z-depth in metres, 0 = no hit
    mask: np.ndarray  # (H, W) bool, True on the object
    camera: Camera
    c2w: np.ndarray  # (4, 4) float64, OpenCV camera-to-world


# -- cameras ---------------------------------------------------------------------------------


def make_camera(size: tuple[int, int], hfov_deg: float = 60.0) -> Camera:
    """A pinhole camera of ``size`` = (width, height) with square pixels and a centred principal point."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {size}")
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
    return Camera(width=width, height=height, fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """The OpenCV camera-to-world pose of a camera at ``eye`` looking at ``target`` with +Y up.

    eye, target: (3,) -> (4, 4)
    """
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)  # points down in the image
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def orbit_poses(
    n_views: int, elevations_deg: Sequence[float] = (15.0, 35.0), radius_m: float = 0.6
) -> list[np.ndarray]:
    """Guided-360-style poses: one ring per elevation, views spread evenly over the rings,
    each ring's azimuths offset so the rings interleave. Ring by ring, in capture order.
    """
    if n_views < 1:
        raise ValueError(f"n_views must be at least 1, got {n_views}")
    if not elevations_deg:
        raise ValueError("need at least one elevation")
    if any(not 0.0 < e < 90.0 for e in elevations_deg):
        raise ValueError(f"elevations must be between 0 and 90 degrees, got {elevations_deg}")
    if radius_m <= _BOUND_RADIUS:
        raise ValueError(f"radius_m must be more than {_BOUND_RADIUS:.3f} m, got {radius_m}")
    rings = len(elevations_deg)
    poses = []
    for k, elev in enumerate(elevations_deg):
        count = n_views // rings + (1 if k < n_views % rings else 0)
        el = math.radians(elev)
        for i in range(count):
            az = 2.0 * math.pi * (i + k / rings) / count
            direction = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
            offset = radius_m * direction
            poses.append(look_at(ORBIT_TARGET + offset, ORBIT_TARGET))
    return poses


def project_points(points: np.ndarray, camera: Camera, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates (pixel-centre convention of this module) and z-depth of world points.

    points: (N, 3) -> uv (N, 2) in pixels, z (N,) in metres
    """
    w2c = np.linalg.inv(c2w)
    pc = points @ w2c[:3, :3].T + w2c[:3, 3]  # (N, 3) camera frame
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([camera.fx * pc[:, 0] / z + camera.cx, camera.fy * pc[:, 1] / z + camera.cy], axis=1)
    return uv, z


# -- ray casting -----------------------------------------------------------------------------


def _hit_box(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry distance into the box (inf on a miss) and the entry face's normal.

    o: (3,) ray origin, d: (N, 3) directions -> t (N,), normal (N, 3)
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (BOX_MIN - o) * inv  # (N, 3)
        t2 = (BOX_MAX - o) * inv
    near = np.minimum(t1, t2)
    near = np.where(np.isnan(near), -np.inf, near)
    far = np.maximum(t1, t2)
    far = np.where(np.isnan(far), np.inf, far)
    t_in = near.max(axis=1)
    t_out = far.min(axis=1)
    hit = (t_in <= t_out) & (t_in > 0)
    axis = near.argmax(axis=1)
    normal = np.zeros_like(d)
    rows = np.arange(len(d))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, t_in, np.inf), normal


def _hit_ball(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Entry distance into the ball (inf on a miss). o: (3,), d: (N, 3) -> (N,)"""
    oc = o - BALL_CENTER
    a = np.einsum("ij,ij->i", d, d)
    b = 2.0 * d @ oc
    c = oc @ oc - BALL_RADIUS**2
    disc = b * b - 4.0 * a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / (2.0 * a)
    return np.where((disc >= 0) & (t > 0), t, np.inf)


def _hit_ground(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Distance to the ground disc (inf on a miss). o: (3,), d: (N, 3) -> (N,)"""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -o[1] / d[:, 1]
    p = o + t[:, None] * d
    inside = (d[:, 1] < 0) & (t > 0) & (p[:, 0] ** 2 + p[:, 2] ** 2 <= GROUND_RADIUS_M**2)
    return np.where(inside, t, np.inf)


def _object_hit(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First hit on the object (the union of two convex solids: the nearer entry wins).

    o: (3,), d: (N, 3) -> t (N,), normal (N, 3)
    """
    t_box, n_box = _hit_box(o, d)
    t_ball = _hit_ball(o, d)
    ball_first = t_ball < t_box
    t = np.where(ball_first, t_ball, t_box)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    normal = np.where(ball_first[:, None], (p - BALL_CENTER) / BALL_RADIUS, n_box)
    return t, normal


def _passes_bounds(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Whether rays (forwards from their origins) meet the object's bounding sphere.

    origins, dirs: (N, 3) or broadcastable (1, 3) -> (N,) bool
    """
    oc = _BOUND_CENTER - origins
    along = np.einsum("ij,ij->i", *np.broadcast_arrays(dirs, oc))
    dd = np.einsum("ij,ij->i", dirs, dirs)
    oc_sq = np.einsum("ij,ij->i", oc, oc)
    with np.errstate(divide="ignore", invalid="ignore"):
        miss_sq = oc_sq - along**2 / dd
    return (oc_sq < _BOUND_RADIUS**2) | ((along > 0) & (miss_sq < _BOUND_RADIUS**2))


def _object_hit_from(origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Shadow rays: distance from each origin along one direction to the object (inf on a miss).

    origins: (N, 3), direction: (3,) -> (N,). Same tests as _object_hit, with the roles of
    origin and direction swapped (many origins, one direction).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / direction
        t1 = (BOX_MIN - origins) * inv
        t2 = (BOX_MAX - origins) * inv
    t_in = np.minimum(t1, t2).max(axis=1)
    t_out = np.maximum(t1, t2).min(axis=1)
    t_box = np.where((t_in <= t_out) & (t_out > 0), np.maximum(t_in, 0.0), np.inf)
    oc = origins - BALL_CENTER
    b = 2.0 * oc @ direction
    c = np.einsum("ij,ij->i", oc, oc) - BALL_RADIUS**2
    disc = b * b - 4.0 * c
    root = np.sqrt(np.maximum(disc, 0.0))
    t_near, t_far = (-b - root) / 2.0, (-b + root) / 2.0
    t_ball = np.where((disc >= 0) & (t_far > 0), np.maximum(t_near, 0.0), np.inf)
    return np.minimum(t_box, t_ball)


def ground_texture(seed: int = 0) -> PlaneTexture:
    """The ground disc's texture, baked at 1 mm texels (finer than a pixel at 640 x 480)."""
    return PlaneTexture.bake(lambda p: ground_albedo(p, seed), GROUND_RADIUS_M, _GROUND_TEXEL_M)


def render_view(
    camera: Camera, c2w: np.ndarray, seed: int = 0, *, ground: PlaneTexture | None = None
) -> RenderedView:
    """Ray cast one view of the scene. Pass ``ground=ground_texture(seed)`` when rendering many
    views, so the ground's texture is baked once."""
    ground = ground or ground_texture(seed)
    h, w = camera.height, camera.width
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)  # (H, W) each
    d_cam = np.stack([(jj - camera.cx) / camera.fx, (ii - camera.cy) / camera.fy, np.ones_like(jj)], axis=-1)
    d = d_cam.reshape(-1, 3) @ c2w[:3, :3].T  # (H*W, 3); camera z = 1, so t is z-depth
    o = c2w[:3, 3]

    # Test the object only on rays through its bounding sphere, the ground only on rays going down.
    n = len(d)
    dd = np.einsum("ij,ij->i", d, d)
    near_obj = np.flatnonzero(_passes_bounds(o[None, :], d))
    t_obj = np.full(n, np.inf)
    n_obj = np.zeros((n, 3))
    t_obj[near_obj], n_obj[near_obj] = _object_hit(o, d[near_obj])
    down = np.flatnonzero(d[:, 1] < 0)
    t_gnd = np.full(n, np.inf)
    t_gnd[down] = _hit_ground(o, d[down])
    on_obj = t_obj < t_gnd
    on_gnd = ~on_obj & np.isfinite(t_gnd)
    t = np.where(on_obj, t_obj, t_gnd)

    rgb = np.empty((n, 3), np.float32)
    sky_t = np.clip(d[:, 1] / np.sqrt(dd), 0.0, 1.0)[:, None]
    rgb[:] = _SKY_HORIZON + (_SKY_TOP - _SKY_HORIZON) * sky_t

    p_obj = o + t[on_obj, None] * d[on_obj]
    lambert = np.clip(n_obj[on_obj] @ _LIGHT_DIR, 0.0, 1.0)
    rgb[on_obj] = object_albedo(p_obj, seed) * (_AMBIENT + (1.0 - _AMBIENT) * lambert)[:, None]

    p_gnd = o + t[on_gnd, None] * d[on_gnd]
    lit = np.ones(len(p_gnd), bool)
    may_shade = np.flatnonzero(_passes_bounds(p_gnd, _LIGHT_DIR[None, :]))
    lit[may_shade] = ~np.isfinite(_object_hit_from(p_gnd[may_shade], _LIGHT_DIR))
    rgb[on_gnd] = ground.lookup(p_gnd) * (_AMBIENT + (1.0 - _AMBIENT) * _LIGHT_DIR[1] * lit)[:, None]

    depth = np.where(np.isfinite(t), t, 0.0).astype(np.float32).reshape(h, w)
    image = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(h, w, 3)
    return RenderedView(rgb=image, depth_m=depth, mask=on_obj.reshape(h, w), camera=camera, c2w=c2w.copy())


def render_orbit(
    n_views: int = 24,
    size: tuple[int, int] = (640, 480),
    *,
    elevations_deg: Sequence[float] = (15.0, 35.0),
    radius_m: float = 0.6,
    seed: int = 0,
    hfov_deg: float = 60.0,
) -> list[RenderedView]:
    """Render the scene from a guided-360-style orbit (see orbit_poses); ``size`` is (width, height)."""
    camera = make_camera(size, hfov_deg)
    poses = orbit_poses(n_views, elevations_deg, radius_m)
    ground = ground_texture(seed)
    return [render_view(camera, c2w, seed, ground=ground) for c2w in poses]


# -- ground truth ----------------------------------------------------------------------------


def _inside_box(p: np.ndarray, eps: float = 0.0) -> np.ndarray:
    return np.all((p > BOX_MIN + eps) & (p < BOX_MAX - eps), axis=1)


def _inside_ball(p: np.ndarray, eps: float = 0.0) -> np.ndarray:
    return np.linalg.norm(p - BALL_CENTER, axis=1) < BALL_RADIUS - eps


def _box_faces() -> list[tuple[int, float, float]]:
    """The box's visible faces as (axis, coordinate, outward sign); the bottom lies on the ground."""
    faces = []
    for axis in range(3):
        for coord, sign in ((BOX_MIN[axis], -1.0), (BOX_MAX[axis], 1.0)):
            if not (axis == 1 and sign < 0):
                faces.append((axis, float(coord), sign))
    return faces


def surface_area_parts() -> list[float]:
    """Areas of the primitives' surfaces before removing the parts hidden inside the other
    solid: the five visible box faces, then the whole ball."""
    size = BOX_MAX - BOX_MIN
    areas = [float(np.prod(np.delete(size, axis))) for axis, _, _ in _box_faces()]
    return areas + [4.0 * math.pi * BALL_RADIUS**2]


def sample_surface(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points on the object's visible surface with outward unit normals.

    The surface is the box's sides and top and the ball, without what lies inside the other
    solid and without the box's bottom (it stands on the ground).
    -> points (n, 3) float64 metres, normals (n, 3) float64
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    faces = _box_faces()
    areas = np.array(surface_area_parts())
    got_p: list[np.ndarray] = []
    got_n: list[np.ndarray] = []
    have = 0
    while have < n:
        m = max(64, int((n - have) * 1.4))
        part = rng.choice(len(areas), size=m, p=areas / areas.sum())
        pts = np.empty((m, 3))
        nrm = np.zeros((m, 3))
        for k, (axis, coord, sign) in enumerate(faces):
            sel = part == k
            pts[sel] = BOX_MIN + rng.random((sel.sum(), 3)) * (BOX_MAX - BOX_MIN)
            pts[sel, axis] = coord
            nrm[sel, axis] = sign
        sel = part == len(faces)
        v = rng.normal(size=(sel.sum(), 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        pts[sel] = BALL_CENTER + BALL_RADIUS * v
        nrm[sel] = v
        on_ball = part == len(faces)
        keep = np.where(on_ball, ~_inside_box(pts), ~_inside_ball(pts))
        got_p.append(pts[keep])
        got_n.append(nrm[keep])
        have += int(keep.sum())
    points, normals = np.concatenate(got_p)[:n], np.concatenate(got_n)[:n]
    return points, normals


def distance_to_object(points: np.ndarray) -> np.ndarray:
    """Unsigned distance from world points to the object's closed surface (box bottom
    included). Exact outside the object; inside it is a lower bound.

    points: (N, 3) -> (N,) metres
    """
    center = (BOX_MIN + BOX_MAX) / 2.0
    half = (BOX_MAX - BOX_MIN) / 2.0
    q = np.abs(points - center) - half
    box = np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)
    ball = np.linalg.norm(points - BALL_CENTER, axis=1) - BALL_RADIUS
    return np.abs(np.minimum(box, ball))
