"""What every source reader shares: the context it works in, what it returns, and file helpers."""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.capture import Camera, CaptureFolder, Frame
from core.errors import IngestError
from core.progress import Progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".avif", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv")
DEFAULT_HFOV_DEG = 50.0
# Folders that archivers and file managers add and that never hold capture data.
JUNK_DIRS = ("__MACOSX",)


@dataclass(frozen=True)
class IngestContext:
    """Where a reader writes (``capture``, a staging folder) and how it reports."""

    capture: CaptureFolder
    progress: Progress
    target_frames: int = 150
    # False when the source was unpacked from an archive that is already in raw/.
    originals_to_raw: bool = True


@dataclass(frozen=True)
class SourceResult:
    """What a reader made of its source: the frames it wrote and how to describe them."""

    kind: str  # source.kind in the manifest
    frames: tuple[Frame, ...]
    default_mode: str = "import"
    scale: str = "unscaled"
    info: dict[str, Any] = field(default_factory=dict)  # extra source.* fields


def natural_key(text: str) -> list[Any]:
    """Sort "img2" before "img10"."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def is_hidden(path: Path, root: Path) -> bool:
    rel = path.relative_to(root).parts
    return any(p.startswith(".") or p in JUNK_DIRS for p in rel)


def files_with_suffix(root: Path, suffixes: Iterable[str], recursive: bool = True) -> list[Path]:
    """Visible files under ``root`` whose suffix (any case) is one of ``suffixes``, naturally sorted."""
    wanted = tuple(s.lower() for s in suffixes)
    found = root.rglob("*") if recursive else root.iterdir()
    hits = [p for p in found if p.is_file() and p.suffix.lower() in wanted and not is_hidden(p, root)]
    return sorted(hits, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def link_or_copy(src: Path, dst: Path) -> Path:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it; returns ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def default_camera(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> Camera:
    """A pinhole camera with a guessed horizontal field of view, centred principal point."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return Camera(width=width, height=height, fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)


def camera_from_35mm(width: int, height: int, focal_35mm: float) -> Camera:
    """Pinhole camera from a 35 mm-equivalent focal length (36 mm maps to the long image side)."""
    f = focal_35mm / 36.0 * max(width, height)
    return Camera(width=width, height=height, fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem_2.ext``, ``stem_3.ext``... if it is already taken; records the result."""
    candidate, n = name, 1
    stem, suffix = os.path.splitext(name)
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}_{n}{suffix}"
    taken.add(candidate.lower())
    return candidate


def even_subsample(count: int, target: int) -> list[int]:
    """``target`` indices spread evenly over ``range(count)`` (all of them if fewer)."""
    if target <= 0:
        raise IngestError(f"must be a positive number of frames, got {target}", "target_frames")
    if count <= target:
        return list(range(count))
    return sorted({round(i * (count - 1) / (target - 1)) for i in range(target)} if target > 1 else {0})


def frame_id(index: int) -> str:
    return f"{index:06d}"


def link_tree(src_root: Path, dst_root: Path) -> int:
    """Hard-link (or copy) every visible file under ``src_root`` to the same place under ``dst_root``."""
    n = 0
    for p in sorted(src_root.rglob("*")):
        if p.is_file() and not is_hidden(p, src_root):
            link_or_copy(p, dst_root / p.relative_to(src_root))
            n += 1
    return n
