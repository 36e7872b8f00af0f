"""The posed frames a stage works from: the poses stage's poses.json, or the capture's own poses."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.capture import Camera, CaptureFolder
from core.errors import InputError, StageError
from recon.lens import FISHEYE, undistort_image


def look_at_point(c2ws: Iterable[np.ndarray]) -> np.ndarray:
    """(3,) the point closest, in least squares, to every camera's optical axis (OpenCV +z) for
    camera-to-world matrices ``c2ws``: where the cameras look."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for c2w in c2ws:
        d = c2w[:3, 2] / np.linalg.norm(c2w[:3, 2])
        off_axis = np.eye(3) - np.outer(d, d)
        a += off_axis
        b += off_axis @ c2w[:3, 3]
    return np.linalg.lstsq(a, b, rcond=None)[0]


@dataclass(frozen=True)
class PosedFrame:
    frame_id: str
    camera: Camera  # intrinsics of the image as stored (may carry OpenCV distortion)
    c2w: np.ndarray  # (4, 4) OpenCV camera-to-world
    image: Path | None  # absolute paths
    depth: Path | None = None
    mask: Path | None = None


def camera_from_nerfstudio(d: dict[str, Any], where: str) -> Camera:
    try:
        if d.get("camera_model") == FISHEYE:
            fisheye = tuple(float(d.get(k, 0.0)) for k in ("k1", "k2", "k3", "k4"))
            model, dist = FISHEYE, fisheye
        else:
            dist = tuple(float(d.get(k, 0.0)) for k in ("k1", "k2", "p1", "p2"))
            model = "OPENCV"
        return Camera(
            width=int(d["w"]), height=int(d["h"]), fx=float(d["fl_x"]), fy=float(d["fl_y"]),
            cx=float(d["cx"]), cy=float(d["cy"]),
            model=model if any(dist) else "PINHOLE", distortion=dist if any(dist) else (),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"bad camera: {e}", where) from None


def load_posed_frames(capture: CaptureFolder, poses_run: Path | None) -> list[PosedFrame]:
    """Registered frames with poses, from ``poses_run``/poses.json or, without one, capture.json."""
    manifest = capture.load()
    masks = {f.id: f.mask for f in manifest.frames}
    if poses_run is None:
        frames = [f for f in manifest.frames if f.pose is not None]
        if not frames:
            raise StageError("the capture has no camera poses: run the poses stage first", capture.root)
        return [
            PosedFrame(f.id, f.camera, np.array(f.pose, np.float64),
                       capture.path(f.image) if f.image else None,
                       capture.path(f.depth) if f.depth else None,
                       capture.path(f.mask) if f.mask else None)
            for f in frames
        ]
    path = Path(poses_run) / "poses.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read: {e}", path) from None
    out = []
    for i, fr in enumerate(data.get("frames", [])):
        where = f"{path}: frames[{i}]"
        c2w = np.array(fr["c2w"], np.float64)
        if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
            raise InputError("c2w must be a finite 4x4 matrix", where)
        mask = masks.get(fr["id"])
        out.append(PosedFrame(
            fr["id"], camera_from_nerfstudio(fr["camera"], where + ".camera"), c2w,
            capture.path(fr["image"]) if fr.get("image") else None,
            capture.path(fr["depth"]) if fr.get("depth") else None,
            capture.path(mask) if mask else None,
        ))
    if not out:
        raise StageError("no registered frames in the poses run", path)
    return out


def read_rgb_undistorted(frame: PosedFrame) -> tuple[np.ndarray, Camera]:
    """(H, W, 3) uint8 RGB with lens distortion removed, and its pinhole camera."""
    if frame.image is None:
        raise InputError("frame has no image", frame.frame_id)
    bgr = cv2.imread(str(frame.image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError("cannot read image", frame.image)
    cam = frame.camera
    h, w = bgr.shape[:2]
    if (w, h) != (cam.width, cam.height):
        cam = cam.scaled(w, h)
    bgr, cam = undistort_image(bgr, cam)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), cam
