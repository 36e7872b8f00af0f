"""Training previews shared by the neural stages: a render of one view written as a small PNG in
the run folder (previews/<stage>-<step>.png, published whole) and reported as a preview event,
so the desktop and ``scanbridge jobs show`` can show what the model sees while it trains."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.fsio import atomic_write_bytes
from core.progress import Progress

PREVIEW_DIR = "previews"
PREVIEW_MAX_SIDE = 256  # pixels; larger renders are shrunk before they are written


def preview_every(steps: int, count: int = 10) -> int:
    """Steps between previews so that a run writes about ``count`` of them."""
    return max(1, steps // max(1, count))


def write_preview(run_dir: Path, stage: str, step: int, rgb: np.ndarray, progress: Progress,
                  caption: str = "") -> Path:
    """Write ``rgb`` ((H, W, 3) floats in 0..1 or uint8) as previews/<stage>-<step>.png in
    ``run_dir`` and report it at ``step``; returns the file."""
    image = np.asarray(rgb)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(np.nan_to_num(image.astype(np.float64)) * 255.0), 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    if max(h, w) > PREVIEW_MAX_SIDE:
        f = PREVIEW_MAX_SIDE / max(h, w)
        image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # cannot happen for a uint8 RGB array; a preview never stops a training
        return run_dir / PREVIEW_DIR
    path = atomic_write_bytes(run_dir / PREVIEW_DIR / f"{stage}-{step}.png", png.tobytes())
    progress.preview(path, step=step, caption=caption)
    return path
