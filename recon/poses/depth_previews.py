"""Stand-in pictures for depth-only frames in transforms.json.

nerfstudio's dataparser needs a ``file_path`` on every frame; a frame with only a depth map (a
Stray Scanner capture without rgb.mp4) gets a grey rendering of its depth at the camera's size
(near is bright), and the frame says ``"depth_only": true`` so our own reader takes its depth and
leaves the picture out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.fsio import atomic_writer

PREVIEW_DIR = "depth_previews"


def depth_preview(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """[height, width, 3] uint8 grey picture of a depth map [h, w] (0 = no measurement -> black)."""
    d = cv2.resize(depth.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
    valid = d > 0
    grey = np.zeros(d.shape, np.uint8)
    if valid.any():
        lo, hi = np.percentile(d[valid], [1, 99])
        span = max(float(hi - lo), 1e-6)
        grey[valid] = np.clip(255.0 - 215.0 * (d[valid] - lo) / span, 40, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def write_depth_previews(out_dir: Path, capture_root: Path, frames: Sequence[Any]) -> dict[str, str]:
    """A preview PNG in ``out_dir/depth_previews/`` for each depth-only frame; {frame id: path
    relative to ``out_dir``}. ``frames`` are PosedFrame-like (frame_id, name, depth, camera)."""
    written: dict[str, str] = {}
    for fr in frames:
        if fr.name is not None or fr.depth is None:
            continue
        depth = cv2.imread(str(capture_root / fr.depth), cv2.IMREAD_UNCHANGED)
        if depth is None:
            continue
        picture = depth_preview(depth, int(fr.camera["w"]), int(fr.camera["h"]))
        ok, buf = cv2.imencode(".png", picture)
        if not ok:
            continue
        rel = f"{PREVIEW_DIR}/{fr.frame_id}.png"
        (out_dir / PREVIEW_DIR).mkdir(parents=True, exist_ok=True)
        with atomic_writer(out_dir / rel) as f:
            f.write(buf.tobytes())
        written[fr.frame_id] = rel
    return written
