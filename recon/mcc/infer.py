"""Completing one prepared view: query a grid in chunks, threshold, mesh, colour the vertices.

The encoder runs once per view; the grid over [-world_size, world_size]^3 (normalised units) is
decoded in chunks, which is exact because queries never attend to each other. The occupancy
probabilities are meshed by marching cubes at the threshold (a solid-occupancy model gives the
object's closed surface; a near-surface model, like the published one, a thin closed shell
around it), and each vertex gets the predicted colour at its position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import ReconstructionError
from recon.mcc.frame import PreparedView
from recon.mcc.model import MCC, Encoded, expected_colour, split_prediction


@dataclass(frozen=True)
class SeenFrame:
    """What the frame itself says about space: along each object pixel's ray, empty up to its depth;
    along a pixel off the object, empty up to that pixel's depth (all the way where it has none)."""

    depth: np.ndarray  # [H, W] metres, 0 = none
    mask: np.ndarray  # [H, W] bool, the object's pixels
    fx: float
    fy: float
    cx: float
    cy: float
    # The floor the object stands on, when gravity is known: points p with up . p < floor are empty.
    up: np.ndarray | None = None  # camera-frame unit vector
    floor: float = 0.0

    def _look_up(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per point: whether it projects into the image, the depth there, and the mask there."""
        h, w = self.depth.shape
        z = points[:, 2]
        ahead = z > 1e-6
        u = np.floor(self.fx * points[:, 0] / np.where(ahead, z, 1) + self.cx).astype(np.int64)
        v = np.floor(self.fy * points[:, 1] / np.where(ahead, z, 1) + self.cy).astype(np.int64)
        inside = ahead & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        ui, vi = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
        return inside, self.depth[vi, ui], self.mask[vi, ui]

    def known_empty(self, points: np.ndarray, margin: float) -> np.ndarray:
        """Camera-frame points [N, 3] that the frame sees to be empty (``margin`` metres of slack)."""
        inside, depth, on_object = self._look_up(points)
        z = points[:, 2]
        in_front = (depth > 0) & (z < depth - margin)
        off_object_unseen = ~on_object & (depth <= 0)
        empty = inside & (in_front | off_object_unseen)
        if self.up is not None:
            empty |= points @ self.up < self.floor
        return empty

    def hidden(self, points: np.ndarray, margin: float) -> np.ndarray:
        """Camera-frame points behind the object's seen surface (where completion has to guess)."""
        inside, depth, on_object = self._look_up(points)
        return inside & on_object & (depth > 0) & (points[:, 2] > depth + margin)


@dataclass(frozen=True)
class Completion:
    vertices: np.ndarray  # [V, 3] float64, camera-frame metres
    faces: np.ndarray  # [F, 3] int32
    colours: np.ndarray  # [V, 3] uint8
    occupied: int  # grid cells over the threshold
    seconds: float


def encode_view(model: MCC, view: PreparedView, device: str = "cpu") -> Encoded:
    def batch(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a)[None].to(device)

    return model.encode(batch(view.rgb), batch(view.xyz), batch(view.valid))


def query_box(view: PreparedView, world_size: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of the query cube the object can be in (normalised camera frame): across the view,
    the seen points' extent with a margin (the frame shows the rest empty); along it, from the
    nearest seen point to as far behind the farthest as the object is wide."""
    pts = view.xyz[view.valid]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = hi - lo
    pad = 0.15 * extent.max()
    lo, hi = lo - pad, hi + pad
    hi[2] = max(hi[2], pts[:, 2].max() + extent[:2].max() + pad)
    return np.clip(lo, -world_size, world_size), np.clip(hi, -world_size, world_size)


@torch.no_grad()
def occupancy_grid(model: MCC, view: PreparedView, resolution: int, chunk: int = 16384,
                   device: str = "cpu") -> tuple[np.ndarray, list[np.ndarray]]:
    """Occupancy probabilities [R, R, R] (x, y, z order) over ``query_box`` and its axes."""
    lo, hi = query_box(view, model.config.world_size)
    axes = [np.linspace(lo[i], hi[i], resolution, dtype=np.float32) for i in range(3)]
    encoded = encode_view(model, view, device)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    probs = np.empty(len(grid), np.float32)
    for start in range(0, len(grid), chunk):
        q = torch.from_numpy(grid[start:start + chunk])[None].to(device)
        logits, _ = split_prediction(model.decode(encoded, q), model.config.colour_bins)
        probs[start:start + chunk] = torch.sigmoid(logits[0]).float().cpu().numpy()
    return probs.reshape(resolution, resolution, resolution), axes


@torch.no_grad()
def colours_at(model: MCC, view: PreparedView, points: np.ndarray, chunk: int = 16384,
               device: str = "cpu", temperature: float = 0.1) -> np.ndarray:
    encoded = encode_view(model, view, device)
    out = np.empty((len(points), 3), np.float32)
    for start in range(0, len(points), chunk):
        q = torch.from_numpy(points[start:start + chunk].astype(np.float32))[None].to(device)
        _, colour_logits = split_prediction(model.decode(encoded, q), model.config.colour_bins)
        out[start:start + chunk] = expected_colour(colour_logits[0], temperature).float().cpu().numpy()
    return (out * 255).round().clip(0, 255).astype(np.uint8)


# ours (measured: docs/mcc-model-card.md) | the paper's eval threshold for its near-surface occupancy
DEFAULT_THRESHOLDS = {"solid": 0.3, "surface": 0.1}


def complete(model: MCC, view: PreparedView, resolution: int = 48, threshold: float | None = None,
             device: str = "cpu", seen: SeenFrame | None = None) -> Completion:
    """The completed object's surface in the view's camera frame (metres). With ``seen``, space
    the frame itself shows to be empty is carved out of the prediction first. ``threshold``:
    the occupancy probability that counts as inside (default: by what the model predicts)."""
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[model.config.occupancy]
    from skimage.measure import marching_cubes

    started = time.monotonic()
    probs, axes = occupancy_grid(model, view, resolution, device=device)
    cells = np.array([float(a[1] - a[0]) for a in axes])
    if seen is not None:
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        margin = float(cells.max()) * view.scale
        empty = seen.known_empty(view.to_camera(grid.astype(np.float64)), margin=margin)
        probs = np.where(empty.reshape(probs.shape), 0.0, probs).astype(np.float32)
    occupied = int((probs > threshold).sum())
    if occupied == 0 or probs.min() > threshold:
        raise ReconstructionError(f"the model predicts {'nothing' if occupied == 0 else 'everything'} "
                                  f"occupied at threshold {threshold}", "mcc.threshold")
    padded = np.pad(probs, 1, constant_values=0.0)  # closes the surface at the grid's edge
    verts, faces, _, _ = marching_cubes(padded, level=threshold, spacing=tuple(cells))
    verts = verts - cells + np.array([a[0] for a in axes])  # undo the pad: index 1 is axes[i][0]
    colours = colours_at(model, view, verts, device=device)
    camera = view.to_camera(verts.astype(np.float64))
    # marching cubes orients faces towards increasing values (inside); flip to face outwards
    return Completion(camera, faces[:, ::-1].astype(np.int32).copy(), colours, occupied,
                      time.monotonic() - started)
