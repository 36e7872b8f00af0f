"""The capture's frames as training rays inside the unit sphere where the field lives.

World (the capture's frame, metres, OpenCV camera-to-world poses) maps to the field's frame by
``x_field = (x_world - centre) / scale``; centre and scale come from the object's masked depth
when the capture has it, else from the point the cameras look at and their distance to it.
Rays are in the field's frame; ``depth_t`` is the distance along the (unit) ray direction to the
surface the depth map saw (0 where there is none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from core.capture import CaptureFolder, Frame
from core.errors import InputError, ReconstructionError
from recon.fusion.frames import read_color, read_depth_png
from recon.posed import look_at_point as cameras_look_at

MIN_FRAMES = 3
PREVIEW_SIDE = 64  # pixels, the longer side of the training preview render
SPHERE_MARGIN = 1.25  # the object's bounding sphere fills 1 / SPHERE_MARGIN of the unit sphere
MAX_DEPTH_M = 100.0
BOX_GROWTH = 0.03  # of the object box's size, on each side
BOX_MARGIN_M = 0.002


@dataclass(frozen=True)
class Normalisation:
    centre: tuple[float, float, float]  # world point at the field's origin
    scale: float  # world metres per field unit
    # World box where masked depth saw the object (grown a little), or None without masked depth:
    # the mesh is cut to it, since what no view can see (under the object) is left unconstrained.
    object_box: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def to_field(self, points: np.ndarray) -> np.ndarray:
        return (points - np.asarray(self.centre)) / self.scale

    def to_world(self, points: np.ndarray) -> np.ndarray:
        return points * self.scale + np.asarray(self.centre)


@dataclass(frozen=True, eq=False)
class RaySet:
    origins: torch.Tensor  # (N, 3) field frame
    directions: torch.Tensor  # (N, 3) unit
    rgb: torch.Tensor  # (N, 3) in [0, 1]
    mask: torch.Tensor | None  # (N,) 1 on the object, 0 off it; None without masks
    depth_t: torch.Tensor | None  # (N,) field units along the ray, 0 = no depth; None without depth
    normalisation: Normalisation
    frames: int
    # The first photo's rays, every pixel (hits or not) at most PREVIEW_SIDE wide, for previews:
    # (origins (h*w, 3), directions (h*w, 3), h, w) in the field frame.
    preview: tuple[torch.Tensor, torch.Tensor, int, int] | None = None

    def __len__(self) -> int:
        return int(self.origins.shape[0])


@dataclass(frozen=True, eq=False)
class _FrameData:
    frame: Frame
    rgb: np.ndarray  # (h, w, 3) float32 0..1
    c2w: np.ndarray  # (4, 4)
    mask: np.ndarray | None  # (h, w) bool
    depth_m: np.ndarray | None  # (h, w) float32 z-depth, 0 = none


def read_pose_run(run_dir: Path) -> dict[str, np.ndarray]:
    """Frame id -> (4, 4) OpenCV camera-to-world from a poses run's poses.json (any scale)."""
    path = Path(run_dir) / "poses.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        poses = {str(f["id"]): np.asarray(f["c2w"], np.float64) for f in data["frames"]}
    except FileNotFoundError:
        raise InputError("missing: the poses run has not finished", path) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the poses ({e})", path) from None
    for frame_id, c2w in poses.items():
        if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
            raise InputError("expected a finite 4x4 c2w", f"{path}: frame {frame_id}")
    return poses


def _read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        raise InputError("file is missing", path)
    mask = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError("cannot decode this mask (truncated or not an image)", path)
    return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 0


def _load_frame(capture: CaptureFolder, frame: Frame, c2w: np.ndarray, max_side: int,
                use_depth: bool, use_masks: bool) -> _FrameData:
    assert frame.image is not None
    rgb = read_color(capture.path(frame.image))
    h, w = rgb.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mask = _read_mask(capture.path(frame.mask), size) if use_masks and frame.mask else None
    depth = None
    if use_depth and frame.depth is not None and frame.pose is not None:
        raw = read_depth_png(capture.path(frame.depth))
        depth = cv2.resize(raw, size, interpolation=cv2.INTER_NEAREST).astype(np.float32) * frame.depth_scale
        depth[~np.isfinite(depth) | (depth > MAX_DEPTH_M)] = 0.0
    if not np.isfinite(c2w).all():
        raise InputError("the pose is not finite", f"{capture.manifest_path}: frame {frame.id}")
    return _FrameData(frame, rgb, c2w, mask, depth)


def _pixel_rays(frame: _FrameData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World origins (N, 3), unit directions (N, 3) and per-ray z-to-distance factors (N,)."""
    h, w = frame.rgb.shape[:2]
    cam = frame.frame.camera.scaled(w, h)
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d_cam = np.stack([(jj - cam.cx) / cam.fx, (ii - cam.cy) / cam.fy, np.ones_like(jj)], axis=-1)
    d_cam = d_cam.reshape(-1, 3)
    z_to_t = np.linalg.norm(d_cam, axis=1)
    d_world = (d_cam / z_to_t[:, None]) @ frame.c2w[:3, :3].T
    origins = np.broadcast_to(frame.c2w[:3, 3], d_world.shape)
    return origins, d_world, z_to_t


def _normalisation(frames: list[_FrameData]) -> Normalisation:
    object_points = []
    for f in frames:
        if f.depth_m is not None and f.mask is not None:
            origins, dirs, z_to_t = _pixel_rays(f)
            depth = f.depth_m.reshape(-1)
            keep = f.mask.reshape(-1) & (depth > 0)
            object_points.append(origins[keep] + dirs[keep] * (depth[keep] * z_to_t[keep])[:, None])
    points = np.concatenate(object_points) if object_points else np.zeros((0, 3))
    box = None
    if len(points) >= 100:
        lo, hi = np.percentile(points, 0.2, axis=0), np.percentile(points, 99.8, axis=0)
        centre = (lo + hi) / 2.0
        radius = float(np.linalg.norm(hi - lo)) / 2.0
        grow = BOX_GROWTH * (hi - lo) + BOX_MARGIN_M
        box = (tuple(float(v) for v in lo - grow), tuple(float(v) for v in hi + grow))
    else:
        centre = cameras_look_at(f.c2w for f in frames)
        distances = [np.linalg.norm(f.c2w[:3, 3] - centre) for f in frames]
        radius = 0.5 * float(np.median(distances))
    if not np.isfinite(centre).all() or not np.isfinite(radius) or radius <= 0:
        raise ReconstructionError("cannot find the object's extent from the cameras and depth")
    return Normalisation(tuple(float(v) for v in centre), radius * SPHERE_MARGIN, box)


def load_rays(capture: CaptureFolder, *, max_side: int, use_depth: bool = True, use_masks: bool = True,
              poses: dict[str, np.ndarray] | None = None) -> RaySet:
    """Every pixel of every posed photo of ``capture`` as a ray (``poses`` overrides capture.json)."""
    manifest = capture.load()
    frames = []
    for frame in manifest.frames:
        c2w = poses.get(frame.id) if poses is not None else (
            None if frame.pose is None else np.asarray(frame.pose, np.float64))
        if frame.image is None or c2w is None:
            continue
        frames.append(_load_frame(capture, frame, c2w, max_side, use_depth, use_masks))
    if len(frames) < MIN_FRAMES:
        raise ReconstructionError(
            f"a neural surface needs at least {MIN_FRAMES} posed photos; this capture has {len(frames)}",
            capture.manifest_path)
    norm = _normalisation(frames)
    with_masks = use_masks and all(f.mask is not None for f in frames)
    with_depth = use_depth and any(f.depth_m is not None for f in frames)
    parts: dict[str, list[np.ndarray]] = {"o": [], "d": [], "rgb": [], "mask": [], "t": []}
    for f in frames:
        origins, dirs, z_to_t = _pixel_rays(f)
        parts["o"].append(norm.to_field(origins))
        parts["d"].append(dirs)
        parts["rgb"].append(f.rgb.reshape(-1, 3))
        if with_masks:
            assert f.mask is not None
            parts["mask"].append(f.mask.reshape(-1).astype(np.float32))
        if with_depth:
            depth = f.depth_m.reshape(-1) if f.depth_m is not None else np.zeros(len(dirs), np.float32)
            parts["t"].append(depth * z_to_t / norm.scale)

    def cat(key: str) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(parts[key]).astype(np.float32))

    origins, dirs = cat("o"), cat("d")
    hits = hits_unit_sphere(origins, dirs)
    return RaySet(
        origins=origins[hits], directions=dirs[hits], rgb=cat("rgb")[hits],
        mask=cat("mask")[hits] if with_masks else None, depth_t=cat("t")[hits] if with_depth else None,
        normalisation=norm, frames=len(frames), preview=_preview_rays(frames[0], norm),
    )


def _preview_rays(frame: _FrameData, norm: Normalisation) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    origins, dirs, _ = _pixel_rays(frame)
    h, w = frame.rgb.shape[:2]
    stride = max(1, -(-max(h, w) // PREVIEW_SIDE))
    keep = (np.arange(h)[::stride, None] * w + np.arange(w)[None, ::stride]).reshape(-1)
    rows, cols = len(range(0, h, stride)), len(range(0, w, stride))
    return (torch.from_numpy(norm.to_field(origins[keep]).astype(np.float32)),
            torch.from_numpy(dirs[keep].astype(np.float32)), rows, cols)


def hits_unit_sphere(origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - 1.0
    return (b * b - c > 1e-6) & (-b + torch.sqrt(torch.clamp(b * b - c, min=0.0)) > 0)


def sphere_near_far(origins: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where rays enter and leave the unit sphere (near clamped at 0): (N,), (N,)."""
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - 1.0
    root = torch.sqrt(torch.clamp(b * b - c, min=1e-8))
    return torch.clamp(-b - root, min=0.0), -b + root
