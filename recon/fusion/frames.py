"""Reading one capture frame's depth, confidence and colour from the capture folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.capture import CaptureFolder, Frame
from core.errors import InputError


@dataclass(frozen=True, eq=False)
class FrameArrays:
    depth: np.ndarray  # (H, W) uint16, metres = value * depth_scale
    confidence: np.ndarray | None  # (H, W) uint8 ARKit levels
    color: np.ndarray | None  # (h, w, 3) uint8 RGB
    c2w: np.ndarray | None  # (4, 4) float64 OpenCV camera-to-world, from capture.json


def _read(path: Path, flags: int) -> np.ndarray:
    if not path.is_file():
        raise InputError("file is missing", path)
    # imdecode on bytes: cv2.imread cannot open some non-ASCII paths and says nothing on failure
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    if image is None:
        raise InputError("cannot decode this image (truncated or not an image)", path)
    return image


def read_depth_png(path: Path) -> np.ndarray:
    """A 16-bit single-channel depth PNG as (H, W) uint16."""
    depth = _read(path, cv2.IMREAD_UNCHANGED)
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise InputError(f"expected a 16-bit single-channel depth PNG, got {depth.dtype} {depth.shape}", path)
    return depth


def read_confidence_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """An 8-bit confidence PNG at the depth map's ``shape`` as (H, W) uint8."""
    conf = _read(path, cv2.IMREAD_UNCHANGED)
    if conf.ndim != 2 or conf.dtype != np.uint8:
        raise InputError(f"expected an 8-bit single-channel PNG, got {conf.dtype} {conf.shape}", path)
    if conf.shape != shape:
        raise InputError(f"is {conf.shape[1]}x{conf.shape[0]}, its depth map {shape[1]}x{shape[0]}", path)
    return conf


def read_color(path: Path) -> np.ndarray:
    """A colour image as (h, w, 3) uint8 RGB."""
    bgr = _read(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_frame(
    capture: CaptureFolder, frame: Frame, *, confidence: bool = True, color: bool = True
) -> FrameArrays:
    """The arrays of a frame that has a depth map (the caller checks it is there)."""
    assert frame.depth is not None
    depth = read_depth_png(capture.path(frame.depth))
    conf = None
    if confidence and frame.confidence is not None:
        conf = read_confidence_png(capture.path(frame.confidence), depth.shape)
    rgb = read_color(capture.path(frame.image)) if color and frame.image is not None else None
    c2w = None if frame.pose is None else np.array(frame.pose, dtype=np.float64)
    return FrameArrays(depth, conf, rgb, c2w)
