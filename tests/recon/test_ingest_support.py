"""Small sources made in code for the ingest tests (no test functions here)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from core.progress import Progress, ProgressEvent
from core.workspace import Workspace

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")
FOX = SHARED / "instant-ngp-fox"
STRAY = SHARED / "strayscanner-iphone-lidar-depthonly"


class Recorder:
    """A Progress sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    @property
    def warnings(self) -> list[str]:
        return [e.message for e in self.events if e.kind == "log" and e.level == "warning"]

    def progress(self) -> Progress:
        return Progress("ingest", self)


def captures_listing(ws: Workspace) -> list[str]:
    """Every entry under captures/, hidden staging folders included."""
    return sorted(os.listdir(ws.captures_dir))


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A textured RGB image [H, W, 3] uint8 (sharp edges, so blur is measurable)."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, size=(height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    return np.kron(cells, np.ones((4, 4, 1), dtype=np.uint8))[:height, :width]


def write_jpeg(
    path: Path, width: int = 32, height: int = 24, seed: int = 0, exif: Image.Exif | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pattern(width, height, seed))
    img.save(path, format="JPEG", quality=90, exif=exif if exif is not None else Image.Exif())
    return path


def write_png(path: Path, width: int = 32, height: int = 24, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern(width, height, seed)).save(path, format="PNG")
    return path
