"""Crop a mesh to the object: a user box, or the region the cameras look at."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import InputError
from recon.mesh.types import Mesh
from recon.mesh.views import PosedView


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in world coordinates."""

    lo: np.ndarray  # (3,)
    hi: np.ndarray  # (3,)

    @classmethod
    def from_list(cls, values: list[float] | tuple[float, ...], where: str = "crop_box") -> Box:
        """[xmin, ymin, zmin, xmax, ymax, zmax] -> Box; a bad list is an error naming ``where``."""
        if len(values) != 6 or not all(np.isfinite(float(x)) for x in values):
            raise InputError("expected 6 finite numbers [xmin, ymin, zmin, xmax, ymax, zmax]", where)
        lo, hi = np.asarray(values[:3], float), np.asarray(values[3:], float)
        if np.any(hi <= lo):
            raise InputError("each max must be greater than its min", where)
        return cls(lo, hi)

    def contains(self, points: np.ndarray) -> np.ndarray:
        return np.all((points >= self.lo) & (points <= self.hi), axis=1)


def look_at_center(views: list[PosedView]) -> np.ndarray | None:
    """Least-squares point nearest to every camera's optical axis, or None when the axes are close
    to parallel or the point lies behind most cameras (a scene walk-through, not an orbit)."""
    if len(views) < 2:
        return None
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for v in views:
        d = v.c2w[:3, 2] / np.linalg.norm(v.c2w[:3, 2])  # optical axis, world
        p = np.eye(3) - np.outer(d, d)  # projects onto the plane normal to the axis
        a += p
        b += p @ v.center
    if np.linalg.eigvalsh(a / len(views))[0] < 0.02:
        return None
    center = np.linalg.solve(a, b)
    in_front = [np.dot(center - v.center, v.c2w[:3, 2]) > 0 for v in views]
    return center if np.mean(in_front) > 0.8 else None


def auto_bounds(views: list[PosedView], margin: float = 1.1) -> Box | None:
    """A cube around where the cameras look, half as wide as the median view covers at that
    distance (an object fills at most the frame), times ``margin``; None when undetermined."""
    center = look_at_center(views)
    if center is None:
        return None
    reach = []
    for v in views:
        dist = np.linalg.norm(center - v.center)
        cam = v.camera
        half_fov = min(np.arctan2(cam.width / 2, cam.fx), np.arctan2(cam.height / 2, cam.fy))
        reach.append(dist * np.sin(half_fov))
    half = float(np.median(reach)) * margin
    return Box(center - half, center + half)


def mask_hull_keep(views: list[PosedView], points: np.ndarray, min_agree: float = 0.75,
                   tolerance: float = 0.0) -> np.ndarray:
    """Visual-hull test: True for points (P, 3) that fall on the object mask in at least
    ``min_agree`` of the masked views that see them. ``tolerance`` grows each mask by that
    fraction of the image's longer side first.

    Not every view: a point on the true surface near a silhouette (the top of a ball) lands a
    pixel outside the mask in about half the views where it is on the limb, and those are a
    minority. The ground beside the object is outside the silhouette in every view that looks
    at that side, about half of them, so it is still cut (growing the masks instead would keep
    a skirt of ground around the base)."""
    seen = np.zeros(len(points), int)
    on_mask = np.zeros(len(points), int)
    for v in views:
        if v.mask is None:
            continue
        h, w = v.mask.shape
        grown = v.mask.astype(np.uint8)
        if tolerance > 0:
            r = max(1, round(tolerance * max(h, w)))
            grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        px, _, z = v.project(points)
        x, y = np.rint(px[:, 0]).astype(int), np.rint(px[:, 1]).astype(int)
        inside = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        seen += inside
        on_mask[inside] += grown[y[inside], x[inside]] > 0
    return (seen == 0) | (on_mask >= min_agree * seen)


def crop_mesh(mesh: Mesh, keep_vertex: np.ndarray) -> Mesh:
    """Keep the faces whose three vertices are kept, and drop unreferenced vertices."""
    faces = mesh.faces[np.all(keep_vertex[mesh.faces], axis=1)]
    used = np.unique(faces)
    remap = np.full(len(mesh.vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    colors = None if mesh.vertex_colors is None else mesh.vertex_colors[used]
    return Mesh(mesh.vertices[used], remap[faces], colors)


def crop_to_object(mesh: Mesh, views: list[PosedView], box: Box | None = None) -> tuple[Mesh, Box | None]:
    """Crop to ``box`` when given, else to :func:`auto_bounds` (and object masks when the views
    have them). Returns the cropped mesh and the box used (None: nothing to crop to)."""
    if box is None:
        box = auto_bounds(views)
    keep = np.ones(len(mesh.vertices), bool) if box is None else box.contains(mesh.vertices)
    if any(v.mask is not None for v in views):
        keep &= mask_hull_keep(views, mesh.vertices)
    return crop_mesh(mesh, keep), box
