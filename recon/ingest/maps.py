"""Depth and confidence maps from apps' exports into the capture: checked, then written as the
capture format wants them (16-bit PNG millimetres, 8-bit PNG ARKit levels 0..2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import IngestError
from recon.ingest.depth import read_raw_map, write_uint8_png

MAX_MAP_SIDE = 8192  # LiDAR maps are 256x192; an upscaled copy may reach the photo's size


def map_size(path: Path, where: str | Path | None = None) -> tuple[int, int]:
    """(width, height) from the header only, refused before decoding when implausibly large."""
    shown = where if where is not None else path
    try:
        with Image.open(path) as img:
            size = img.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise IngestError(f"cannot read this map ({e})", shown) from None
    if not all(0 < s <= MAX_MAP_SIDE for s in size):
        raise IngestError(f"map is {size[0]}x{size[1]}; at most {MAX_MAP_SIDE} pixels a side", shown)
    return size


def read_mm_depth_png(path: Path, where: str | Path | None = None) -> np.ndarray:
    """A 16-bit depth PNG in millimetres as stored: [H, W] uint16."""
    map_size(path, where)
    data = read_raw_map(path)
    if data.dtype != np.uint16:
        raise IngestError(f"expected a 16-bit depth PNG (millimetres), got {data.dtype}",
                          where if where is not None else path)
    return data


def confidence_levels(conf: np.ndarray) -> np.ndarray:
    """ARKit levels 0 (low), 1 (medium), 2 (high) from 0..2 maps or 0..255 maps (0, 127/128, 255)."""
    conf = conf.astype(np.float64)
    if conf.size and conf.max() > 2:
        conf = np.rint(conf / 127.5)
    return np.clip(conf, 0, 2).astype(np.uint8)


def write_confidence(conf: np.ndarray, dst: Path) -> Path:
    return write_uint8_png(confidence_levels(conf), dst)
