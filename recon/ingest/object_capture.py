"""Apple Object Capture folders (the layout of Apple's photo-capture sample app): per shot a photo
``IMG_0001.HEIC`` with ``IMG_0001_depth.TIF`` (one channel of 32-bit float depth in metres) and
``IMG_0001_gravity.TXT`` (the gravity vector ``x,y,z`` in the device's frame, in g, as Core Motion
gives it) beside it. There are no poses: they come from SfM.

Device frame (Core Motion): x to the right of the screen, y to its top, z out of the screen. The
back camera's pictures are stored in the sensor's landscape orientation (the device's top on the
left), so a direction's OpenCV camera coordinates (x right, y down, z forward) are (-y, -x, -z)
of the device's. A photo that EXIF says to turn upright is turned (recon.ingest.images), and its
depth map and gravity with it.

Depth maps become the capture's 16-bit millimetre PNGs; gravity goes, per frame and in the
upright OpenCV camera frame, to ``source.gravity`` in capture.json; ``up_from_gravity`` turns it
into the world's up direction once the frames have poses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.capture import Frame
from core.errors import IngestError
from core.source_paths import read_regular
from recon.ingest.common import IngestContext, SourceResult
from recon.ingest.depth import metres_to_mm_png, read_raw_map

DEPTH_SUFFIX = "_depth"
GRAVITY_SUFFIX = "_gravity"
DEPTH_EXTENSIONS = (".tif", ".tiff")
GRAVITY_EXTENSIONS = (".txt",)
MAX_GRAVITY_BYTES = 256
GRAVITY_RANGE_G = (0.5, 1.5)  # a phone held still measures about 1 g
DEVICE_TO_CAMERA = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
# EXIF orientation -> (quarter turns np.rot90 gives the stored map, 2x2 map of camera x, y directions).
UPRIGHT_TURNS = {1: (0, ((1, 0), (0, 1))), 3: (2, ((-1, 0), (0, -1))),
                 6: (-1, ((0, -1), (1, 0))), 8: (1, ((0, 1), (-1, 0)))}


def _side_file(photo: Path, suffix: str, extensions: tuple[str, ...]) -> Path | None:
    for f in photo.parent.iterdir():
        if f.stem.lower() == (photo.stem + suffix).lower() and f.suffix.lower() in extensions and f.is_file():
            return f
    return None


def is_object_capture(root: Path) -> bool:
    """A folder of photos with ``*_depth.TIF`` or ``*_gravity.TXT`` files beside them."""
    if not root.is_dir():
        return False
    names = {p.name.lower() for p in root.iterdir() if p.is_file()}
    for name in names:
        stem, ext = name.rsplit(".", 1) if "." in name else (name, "")
        for suffix, exts in ((DEPTH_SUFFIX, DEPTH_EXTENSIONS), (GRAVITY_SUFFIX, GRAVITY_EXTENSIONS)):
            if stem.endswith(suffix) and f".{ext}" in exts:
                base = stem[: -len(suffix)]
                if any(n.rsplit(".", 1)[0] == base for n in names if n != name):
                    return True
    return False


def read_gravity(path: Path) -> np.ndarray:
    """(3,) gravity in g, device frame, from ``x,y,z`` (commas or spaces); IngestError naming ``path``."""
    text = read_regular(path, MAX_GRAVITY_BYTES, path).decode("utf-8", errors="replace")
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if len(parts) != 3:
        raise IngestError(f"expected three numbers x,y,z, got {text.strip()[:60]!r}", path)
    try:
        g = np.array([float(p) for p in parts])
    except ValueError:
        raise IngestError(f"expected three numbers x,y,z, got {text.strip()[:60]!r}", path) from None
    norm = float(np.linalg.norm(g)) if np.isfinite(g).all() else math.nan
    if not GRAVITY_RANGE_G[0] <= norm <= GRAVITY_RANGE_G[1]:
        raise IngestError(f"gravity must measure about 1 g, got {norm:g}", path)
    return g


def _orientation(photo: Path) -> int:
    """The photo's EXIF orientation as shot (pillow-heif turns HEIC pictures upright itself and
    keeps the original value aside)."""
    from recon.ingest.images import _orientation as exif_orientation
    from recon.ingest.images import open_image

    with open_image(photo) as img:
        original = img.info.get("original_orientation")
        return original if isinstance(original, int) and 1 <= original <= 8 else exif_orientation(img)


def read_object_capture(root: Path, ctx: IngestContext) -> SourceResult:
    from recon.ingest.images import ingest_image_files
    from recon.ingest.photo_files import maps_left_out, split_photos

    photos, maps = split_photos(root)
    if not photos:
        raise IngestError("no photos found beside the depth and gravity files", root)
    frames = ingest_image_files(photos, root, ctx)
    gravity: dict[str, list[float]] = {}
    out: list[Frame] = []
    with_depth = 0
    for photo, frame in zip(photos, frames, strict=True):
        depth_file = _side_file(photo, DEPTH_SUFFIX, DEPTH_EXTENSIONS)
        gravity_file = _side_file(photo, GRAVITY_SUFFIX, GRAVITY_EXTENSIONS)
        turn = UPRIGHT_TURNS.get(_orientation(photo)) if depth_file or gravity_file else None
        if (depth_file or gravity_file) and turn is None:
            ctx.progress.warning(f"{photo.name}: mirrored by its EXIF orientation; its depth and gravity "
                                 "are left out")
            out.append(frame)
            continue
        if gravity_file is not None and turn is not None:
            g_cam = DEVICE_TO_CAMERA @ read_gravity(gravity_file)
            g_cam[:2] = np.array(turn[1]) @ g_cam[:2]
            gravity[frame.id] = [round(float(v), 6) for v in g_cam / np.linalg.norm(g_cam)]
        if depth_file is not None and turn is not None:
            frame = _with_depth(frame, depth_file, turn[0], ctx)
            with_depth += 1
        out.append(frame)
    ctx.progress.log(f"Object Capture folder: {len(out)} photos, {with_depth} depth maps, "
                     f"{len(gravity)} gravity vectors")
    if maps:
        ctx.progress.log(maps_left_out(maps))
    return SourceResult(kind="object-capture", frames=tuple(out),
                        info={"image_count": len(out), "depth_maps": with_depth, "gravity": gravity})


def _with_depth(frame: Frame, depth_file: Path, quarter_turns: int, ctx: IngestContext) -> Frame:
    from dataclasses import replace

    depth = read_raw_map(depth_file)
    if depth.dtype.kind != "f":
        raise IngestError(f"expected float depth in metres, got {depth.dtype}", depth_file)
    depth = np.rot90(depth, quarter_turns)
    w, h = frame.camera.width, frame.camera.height
    if abs(depth.shape[1] / depth.shape[0] - w / h) > 0.02 * (w / h):
        raise IngestError(f"is {depth.shape[1]}x{depth.shape[0]}, not the shape of its {w}x{h} photo",
                          depth_file)
    rel = f"depth/{frame.id}.png"
    metres_to_mm_png(depth, ctx.capture.path(rel))
    return replace(frame, depth=rel, depth_scale=0.001)


def up_from_gravity(c2ws: Mapping[str, np.ndarray], gravity: Mapping[str, list[float]]) -> np.ndarray | None:
    """World up (3,) from per-frame gravity in camera coordinates and the frames' OpenCV
    camera-to-world poses: minus the mean of the gravity directions in the world; None without
    any frame that has both, or when they disagree too much to average."""
    down = [np.asarray(c2ws[k], float)[:3, :3] @ np.asarray(g, float)
            for k, g in gravity.items() if k in c2ws]
    if not down:
        return None
    down = [d / np.linalg.norm(d) for d in down]
    mean = np.mean(down, axis=0)
    if np.linalg.norm(mean) < 0.5:
        return None
    return -mean / np.linalg.norm(mean)


def gravity_up(choice: str, c2ws: Mapping[str, np.ndarray],
               source: Mapping[str, object]) -> np.ndarray | None:
    """The world's up from the capture's measured gravity (``source.gravity``, as this reader
    writes it) when the up direction is left to ``auto``; None otherwise or without gravity."""
    gravity = source.get("gravity")
    if choice != "auto" or not isinstance(gravity, Mapping) or not gravity:
        return None
    return up_from_gravity(c2ws, gravity)
