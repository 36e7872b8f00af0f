"""What every source reader shares: the context it works in, what it returns, and file helpers."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.capture import Camera, CaptureFolder, Frame
from core.errors import IngestError, ScanBridgeError
from core.progress import Progress
from core.source_paths import copy_into, inside_root, read_regular

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".avif", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv")
DEFAULT_HFOV_DEG = 50.0
# Folders that archivers and file managers add and that never hold capture data.
JUNK_DIRS = ("__MACOSX",)
MAX_JSON_BYTES = 64 << 20  # a transforms.json of 100k frames is ~40 MiB
MAX_JSON_INT_DIGITS = 30  # JSON integers longer than this are no field's value


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
    """Visible files under ``root`` whose suffix (any case) is one of ``suffixes``, naturally sorted.

    Each one is checked by :func:`core.source_paths.inside_root`: a symlink out of ``root``, a FIFO
    or a device with such a suffix is an UnsafeSourceError naming it, not silently skipped.
    """
    wanted = tuple(s.lower() for s in suffixes)
    found = root.rglob("*") if recursive else root.iterdir()
    hits = [p for p in found if p.suffix.lower() in wanted and not is_hidden(p, root) and not p.is_dir()]
    for p in hits:
        inside_root(root, p.relative_to(root).as_posix(), p)
    return sorted(hits, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def copy_file(src: Path, dst: Path) -> Path:
    """Copy ``src`` to the new name ``dst`` (never a hard link into the user's files); returns ``dst``."""
    return copy_into(src, dst)


# Kept for readers written against the old name: it copies, it never links.
link_or_copy = copy_file


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"the number {text[:12]}... has {len(text)} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:24]} is out of range")
    return value


def load_json(path: Path, where: str | Path | None = None) -> Any:
    """Parse the JSON file ``path`` (a regular file of at most MAX_JSON_BYTES) with every number
    finite: NaN, Infinity, 1e400 and 400-digit integers are one IngestError naming ``where``
    (default ``path``), as are invalid UTF-8 and nesting too deep to parse."""
    where = path if where is None else where
    data = read_regular(path, MAX_JSON_BYTES, where)
    try:
        return json.loads(
            data.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except UnicodeDecodeError:
        raise IngestError("not UTF-8 text", where) from None
    except json.JSONDecodeError as e:
        raise IngestError(f"not valid JSON (line {e.lineno}, column {e.colno})", where) from None
    except RecursionError:
        raise IngestError("nested too deeply to read", where) from None
    except ValueError as e:
        raise IngestError(f"not usable JSON ({e})", where) from None


class RawMirror:
    """Copies of a source's original files into raw/, each at its path relative to ``root``.

    A file several entries name is copied once; every name in raw/ is a distinct file of the
    source, so names are unique by construction.
    """

    def __init__(self, root: Path, raw_dir: Path) -> None:
        self.root = Path(os.path.abspath(root)).resolve()
        self.raw_dir = raw_dir
        self._copied: set[Path] = set()

    def add(self, src: Path, rel: str | None = None) -> None:
        """Copy ``src`` (a file under ``root``, as inside_root returned it) into raw/; ``rel`` names
        a file the user gave by hand (which may live elsewhere) instead."""
        resolved = src.resolve()
        if resolved in self._copied:
            return
        # inside_root made sure a file a source names is under root.
        copy_into(resolved, self.raw_dir / (rel or resolved.relative_to(self.root)))
        self._copied.add(resolved)


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


def copy_tree(src_root: Path, dst_root: Path) -> int:
    """Copy every visible file under ``src_root`` to the same place under ``dst_root``.

    A symlink out of ``src_root``, a FIFO or a device file in it is an UnsafeSourceError naming it.
    """
    n = 0
    for p in sorted(src_root.rglob("*")):
        if is_hidden(p, src_root) or p.is_dir():
            continue
        rel = p.relative_to(src_root).as_posix()
        copy_into(inside_root(src_root, rel, p), dst_root / rel)
        n += 1
    return n


# Kept for readers written against the old name: it copies, it never links.
link_tree = copy_tree


def show_paths_as(err: ScanBridgeError, real: Path, shown: str, sep: str) -> ScanBridgeError:
    """``err`` with the folder ``real`` (a staging or unpacked folder the user never saw) written as
    ``shown``: ``<real>/a/b.jpg`` becomes ``<shown><sep>a/b.jpg`` (``archive.zip: a/b.jpg``)."""
    real_text = str(real)

    def fix(text: str) -> str:
        text = text.replace(real_text + os.sep, shown + sep)
        return shown if text == real_text else text.replace(real_text, shown)

    if err.where is not None:
        err.where = fix(err.where)
    err.reason = fix(err.reason)
    err.args = (f"{err.where}: {err.reason}" if err.where else err.reason,)
    return err
