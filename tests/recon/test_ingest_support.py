"""Small sources made in code for the ingest tests (no test functions here)."""

from __future__ import annotations

import hashlib
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


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``root`` (and the target of every symlink), by relative path."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


def write_depth16(path: Path, value: int, width: int = 16, height: int = 12) -> Path:
    """A 16-bit PNG depth map in millimetres, every pixel ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), value, np.uint16)).save(path, format="PNG")
    return path


def make_victim(root: Path) -> Path:
    """A folder outside every source: files a hostile source would like to read or overwrite."""
    write_depth16(root / "depth16.png", 4321)
    write_jpeg(root / "secret.jpg", 16, 12, seed=99)
    write_png(root / "secret.png", 16, 12, seed=98)
    (root / "notes.txt").write_text("private\n")
    return root
