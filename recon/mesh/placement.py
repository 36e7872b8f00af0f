"""Placement: a similarity transform that makes the mesh Y-up, centred on x/z, standing on y = 0,
facing the first camera (+z), in metres when the scale is known."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConfigError, ReconstructionError
from recon.mesh.isolate import SupportPlane
from recon.mesh.types import Mesh
from recon.mesh.views import PosedView

UP_CHOICES = ("auto", "cameras", "+x", "-x", "+y", "-y", "+z", "-z")
# Sources whose world frame is ARKit's: gravity-aligned with +y up.
ARKIT_SOURCES = ("arkit", "strayscanner", "record3d", "polycam", "live")
# Scale statuses: metric (depth or device poses), aruco (a printed marker), user (the user gave
# the real size), estimated (nothing known: a default size, flagged), unscaled (left in SfM units).
REAL_SCALES = ("metric", "aruco", "user")
ESTIMATED = "estimated"
DEFAULT_LONGEST_SIDE_M = 0.30  # an unscaled photo scan is most often an object on a table


@dataclass(frozen=True)
class Placement:
    """``matrix`` (4, 4) maps capture-world points to placed points: placed = s R p + t."""

    matrix: np.ndarray
    scale_status: str  # one of REAL_SCALES, ESTIMATED or "unscaled"
    metres_per_unit: float | None
    up_source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale_status,
            "metric": self.scale_status in REAL_SCALES,
            "size_estimated": self.scale_status == ESTIMATED,
            "metres_per_unit": self.metres_per_unit,
            "up_source": self.up_source,
            "matrix": [[float(x) for x in row] for row in self.matrix],
        }


def cameras_up(views: list[PosedView]) -> np.ndarray:
    """World up from the cameras. A hand-held camera is rarely rolled, so its x axis is nearly
    horizontal: up is the direction most perpendicular to every camera's x axis (signed like the
    mean camera up, -y of OpenCV cameras). When the x axes barely vary (every photo faces the
    same way) that direction is not determined and the mean camera up is used."""
    if not views:
        raise ReconstructionError("no posed frames to tell which way is up", "frames")
    mean_up = -np.mean([v.c2w[:3, 1] for v in views], axis=0)
    mean_up /= max(np.linalg.norm(mean_up), 1e-12)
    x_axes = np.asarray([v.c2w[:3, 0] / np.linalg.norm(v.c2w[:3, 0]) for v in views])  # (V, 3)
    evals, evecs = np.linalg.eigh(x_axes.T @ x_axes / len(views))
    if evals[1] > 0.02:  # the x axes span a plane: its normal is up
        normal = evecs[:, 0] * (1.0 if np.dot(evecs[:, 0], mean_up) >= 0 else -1.0)
        if np.dot(normal, mean_up) > np.cos(np.radians(45)):
            return normal
    return mean_up


def resolve_up(
    choice: str, views: list[PosedView], source_kind: str | None, mode: str | None
) -> tuple[np.ndarray, str]:
    """The world up vector for ``choice`` (one of UP_CHOICES) and a word for where it came from."""
    if choice not in UP_CHOICES:
        raise ConfigError(f"must be one of {', '.join(UP_CHOICES)}, got {choice!r}", "up")
    if choice == "auto":
        if mode == "rgbd" or (source_kind or "").lower() in ARKIT_SOURCES:
            return np.array([0.0, 1.0, 0.0]), "arkit-gravity"
        return cameras_up(views), "cameras"
    if choice == "cameras":
        return cameras_up(views), "cameras"
    axis = np.zeros(3)
    axis["xyz".index(choice[1])] = 1.0 if choice[0] == "+" else -1.0
    return axis, f"axis {choice}"


def place(
    mesh: Mesh,
    up: np.ndarray,
    views: list[PosedView],
    scale_status: str,
    metres_per_unit: float | None = None,
    up_source: str = "cameras",
    floor: float | None = None,
) -> Placement:
    """The placement of ``mesh``: ``up`` becomes +y, the first view's side becomes +z, the x/z
    centre of the bounding box moves to 0 and the floor to y = 0, scaled by ``metres_per_unit``
    when known. ``floor``: the floor's height along ``up`` in world units (see
    :func:`floor_height`); None puts the lowest point on y = 0."""
    if mesh.n_faces == 0:
        raise ReconstructionError("cannot place an empty mesh", "mesh")
    y_axis = np.asarray(up, float) / np.linalg.norm(up)
    center = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    front = (views[0].center - center) if views else np.array([0.0, 0.0, 1.0])
    front = front - np.dot(front, y_axis) * y_axis
    if np.linalg.norm(front) < 1e-9:  # first camera straight above: any horizontal direction
        front = np.cross(y_axis, [1.0, 0.0, 0.0] if abs(y_axis[0]) < 0.9 else [0.0, 0.0, 1.0])
    z_axis = front / np.linalg.norm(front)
    x_axis = np.cross(y_axis, z_axis)
    rot = np.stack([x_axis, y_axis, z_axis])  # rows: placed axes in world coordinates
    s = float(metres_per_unit) if metres_per_unit else 1.0
    placed = s * mesh.vertices @ rot.T  # (N, 3)
    lo, hi = placed.min(0), placed.max(0)
    ground = lo[1] if floor is None else s * float(floor)
    t = np.array([-(lo[0] + hi[0]) / 2, -ground, -(lo[2] + hi[2]) / 2])
    matrix = np.eye(4)
    matrix[:3, :3] = s * rot
    matrix[:3, 3] = t
    return Placement(matrix, scale_status, metres_per_unit, up_source)


def floor_height(plane: SupportPlane, up: np.ndarray, mesh: Mesh) -> float:
    """The height along ``up`` (world units) of ``plane`` under the centre of ``mesh``'s bounds:
    where the model stands, whatever a few outliers below it say."""
    y_axis = np.asarray(up, float) / np.linalg.norm(up)
    centre = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    along = float(np.dot(plane.normal, y_axis))  # > cos(MAX_TILT_DEG): the plane is horizontal
    on_plane = centre - plane.height(centre[None])[0] / along * y_axis
    return float(np.dot(on_plane, y_axis))


def longest_side(mesh: Mesh, up: np.ndarray, views: list[PosedView]) -> float:
    """The longest side of ``mesh``'s bounding box once placed (up is +y), in the mesh's units."""
    rotation = place(mesh, up, views, "unscaled").matrix[:3, :3]
    return float(np.ptp(mesh.vertices @ rotation.T, axis=0).max())


def size_scale(mesh: Mesh, up: np.ndarray, views: list[PosedView], longest_side_m: float) -> float:
    """Metres per mesh unit that make the placed mesh's longest side ``longest_side_m``."""
    longest = longest_side(mesh, up, views)
    if not np.isfinite(longest) or longest <= 0:
        raise ReconstructionError("the mesh has no extent to scale", "mesh")
    return longest_side_m / longest
