"""Posed photos -> a nerfstudio dataset in the run folder: undistorted, downscaled PNGs and a
transforms.json (OpenGL camera-to-world, pinhole intrinsics) that names only those files.

Writing our own copy keeps nerfstudio's dataparser from downscaling next to the capture (it
would write images_N/ folders there) and drops depth-only frames, which have no photo.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.capture import Camera
from core.errors import InputError, ReconstructionError
from core.fsio import atomic_write_bytes, atomic_write_json
from recon.posed import PosedFrame, read_rgb_undistorted

DATA_DIR = "data"
TRANSFORMS = "transforms.json"
FRAMES_FILE = "frames.json"
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
MIN_VIEWS = 3


@dataclass(frozen=True, eq=False)
class TrainingView:
    name: str  # image file name inside data/images
    camera: Camera  # pinhole, at the stored (downscaled) size
    c2w: np.ndarray  # (4, 4) OpenCV camera-to-world in the capture's world frame


def _downscaled(rgb: np.ndarray, cam: Camera, max_side: int) -> tuple[np.ndarray, Camera]:
    h, w = rgb.shape[:2]
    if max(w, h) <= max_side:
        return rgb, cam
    f = max_side / max(w, h)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cam.scaled(*size)


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError("cannot encode image", "nerf data")
    return buf.tobytes()


def transforms_for(views: Sequence[TrainingView]) -> dict[str, Any]:
    """nerfstudio transforms.json content; per-frame intrinsics (views may differ in size)."""
    frames = []
    for v in views:
        c = v.camera
        frames.append({
            "file_path": f"images/{v.name}",
            "transform_matrix": (v.c2w @ OPENCV_TO_OPENGL).tolist(),
            "camera_model": "PINHOLE", "w": c.width, "h": c.height,
            "fl_x": c.fx, "fl_y": c.fy, "cx": c.cx, "cy": c.cy,
        })
    return {"camera_model": "PINHOLE", "frames": frames}


def write_dataset(frames: Sequence[PosedFrame], out_dir: Path, max_side: int) -> list[TrainingView]:
    """Write ``out_dir``/data/{images/*.png, transforms.json, frames.json}; returns the views."""
    photos = [f for f in frames if f.image is not None]
    if len(photos) < MIN_VIEWS:
        raise ReconstructionError(f"a NeRF needs at least {MIN_VIEWS} posed photos, got {len(photos)}")
    data = out_dir / DATA_DIR
    (data / "images").mkdir(parents=True, exist_ok=True)
    views = []
    for i, frame in enumerate(photos):
        rgb, cam = read_rgb_undistorted(frame)
        rgb, cam = _downscaled(rgb, cam, max_side)
        name = f"frame_{i:05d}.png"
        atomic_write_bytes(data / "images" / name, _png(rgb))
        views.append(TrainingView(name, cam, np.asarray(frame.c2w, np.float64)))
    atomic_write_json(data / TRANSFORMS, transforms_for(views))
    atomic_write_json(data / FRAMES_FILE, [
        {"name": v.name, "c2w": v.c2w.tolist(),
         "camera": [v.camera.width, v.camera.height, v.camera.fx, v.camera.fy, v.camera.cx, v.camera.cy]}
        for v in views
    ])
    return views


def read_views(out_dir: Path) -> list[TrainingView]:
    """The views ``write_dataset`` wrote into this run folder (in the capture's world frame)."""
    path = out_dir / DATA_DIR / FRAMES_FILE
    try:
        records = json.loads(path.read_text())
        return [TrainingView(r["name"], Camera(int(r["camera"][0]), int(r["camera"][1]),
                                               *map(float, r["camera"][2:6])),
                             np.array(r["c2w"], np.float64)) for r in records]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise InputError(f"cannot read: {e}", path) from None


def read_image(out_dir: Path, view: TrainingView) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a training view as nerfstudio sees it."""
    bgr = cv2.imread(str(out_dir / DATA_DIR / "images" / view.name), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError("cannot read image", out_dir / DATA_DIR / "images" / view.name)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
