"""Depth, confidence and mask maps into the capture format: 16-bit PNG millimetres, 8-bit PNGs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.errors import IngestError

# OpenCV reads and writes EXR only when this is set before its first EXR call.
os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

import cv2  # noqa: E402

MAX_DEPTH_MM = 65535


def read_raw_map(path: Path) -> np.ndarray:
    """A depth / mask / confidence map as stored: [H, W] (first channel of multi-channel files)."""
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError) as e:
        raise IngestError(f"cannot read this map ({e})", path) from None
    if data is None:
        raise IngestError("cannot read this map (corrupt, truncated or an unsupported format)", path)
    if data.ndim == 3:
        # OpenCV gives BGR(A); an RGB depth EXR keeps depth in R (index 2).
        is_rgb_exr = path.suffix.lower() == ".exr" and data.shape[2] >= 3
        data = data[..., 2] if is_rgb_exr else data[..., 0]
    if data.ndim != 2 or data.size == 0:
        raise IngestError(f"expected a single-channel 2D map, got shape {data.shape}", path)
    return data


def metres_to_mm_png(depth_m: np.ndarray, dst: Path) -> Path:
    """Write ``depth_m`` [H, W] (metres; NaN, inf, <= 0 mean no measurement) as 16-bit mm PNG."""
    mm = np.nan_to_num(depth_m.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.where((mm > 0) & (mm <= MAX_DEPTH_MM), np.rint(mm), 0).astype(np.uint16)  # [H, W]
    dst.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", mm)
    if not ok:
        raise IngestError("could not encode depth as PNG", dst)
    dst.write_bytes(buf.tobytes())
    return dst


def write_uint8_png(data: np.ndarray, dst: Path) -> Path:
    """Write an 8-bit [H, W] map as PNG."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", data.astype(np.uint8))
    if not ok:
        raise IngestError("could not encode map as PNG", dst)
    dst.write_bytes(buf.tobytes())
    return dst
