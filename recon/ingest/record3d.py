"""Record3D "EXR + JPG" exports: colour JPEGs, float32 EXR depth in metres, ARKit poses.

Layout (both seen in the wild): ``metadata.json`` (or ``metadata``) beside ``rgb/N.jpg`` and
``depth/N.exr``, or beside ``rgbd/N.jpg`` and ``rgbd/N.exr``; N counts from 0. Metadata keys:
``w``, ``h`` (colour size), ``K`` (3x3, column-major: fx 0 0 0 fy 0 cx cy 1), optionally
``perFrameIntrinsicCoeffs`` ([fx, fy, cx, cy] per frame), ``poses`` ([qx, qy, qz, qw, tx, ty,
tz] per frame: ARKit camera-to-world, camera axes x right, y up, z back), ``fps``,
``frameTimestamps``. Depth becomes 16-bit millimetre PNGs in depth/.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import inside_root
from recon.ingest.common import (
    IngestContext,
    SourceResult,
    copy_file,
    copy_tree,
    even_subsample,
    frame_id,
    load_json,
)
from recon.ingest.depth import metres_to_mm_png, read_raw_map
from recon.ingest.geometry import as_pose_tuple, opengl_to_opencv, pose_from_quaternion
from recon.ingest.images import open_image, suffix_for

METADATA_NAMES = ("metadata.json", "metadata")
FRAME_FOLDERS = (("rgb", "depth"), ("rgbd", "rgbd"))
COLOUR_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_SIDE = 1 << 16
MAX_FOCAL = 1e7
MAX_FPS = 10_000


def find_metadata(root: Path) -> Path | None:
    """The metadata file of a Record3D export in ``root``, if ``root`` is one."""
    if not root.is_dir():
        return None
    for name in METADATA_NAMES:
        p = root / name
        if p.is_file() and any((root / c).is_dir() or (root / d).is_dir() for c, d in FRAME_FOLDERS):
            return p
    return None


def _load(path: Path) -> dict[str, Any]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise IngestError("expected a JSON object", path)
    return data


def _numbers(v: Any, n: int | None, where: str) -> list[float]:
    ok = (
        isinstance(v, list)
        and (n is None or len(v) == n)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    )
    if not ok:
        raise IngestError(f"expected {n if n else 'a list of'} finite numbers", where)
    return [float(x) for x in v]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _size(meta: dict[str, Any], key: str, where: Path) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_SIDE or v != int(v):
        reason = f"expected a whole number of pixels from 1 to {MAX_SIDE}, got {v!r}"
        raise IngestError(reason, f"{where}: {key}")
    return int(v)


def intrinsics_from_k(k: list[float]) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy from a flat 3x3 K, column-major as Record3D writes it (row-major accepted too)."""
    m = np.asarray(k).reshape(3, 3).T  # column-major -> [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    if abs(m[0, 2]) + abs(m[1, 2]) < abs(m[2, 0]) + abs(m[2, 1]):
        m = m.T  # it was written row-major
    return float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2])


def _check_intrinsics(k: tuple[float, float, float, float], where: str) -> tuple[float, float, float, float]:
    fx, fy, cx, cy = k
    far = 10 * MAX_SIDE
    if not (0 < fx <= MAX_FOCAL and 0 < fy <= MAX_FOCAL and abs(cx) <= far and abs(cy) <= far):
        raise IngestError(f"focal lengths must be positive and at most {MAX_FOCAL:g}, got {list(k)}", where)
    return k


def _frame_file(root: Path, folder: str, index: int, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        rel = f"{folder}/{index}{suffix}"
        if inside_root(root, rel, root / rel).is_file():
            return root / rel
    return None


def read_record3d(root: Path, ctx: IngestContext) -> SourceResult:
    meta_path = find_metadata(root)
    if meta_path is None:
        raise IngestError("not a Record3D export (no metadata.json beside rgb/ or rgbd/)", root)
    inside_root(root, meta_path.name, meta_path)
    meta = _load(meta_path)
    width, height = _size(meta, "w", meta_path), _size(meta, "h", meta_path)
    poses_raw = meta.get("poses")
    if not isinstance(poses_raw, list) or not poses_raw:
        raise IngestError("expected a non-empty list of poses", f"{meta_path}: poses")
    count = len(poses_raw)
    per_frame_k = meta.get("perFrameIntrinsicCoeffs")
    if per_frame_k is not None and (not isinstance(per_frame_k, list) or len(per_frame_k) != count):
        raise IngestError(f"expected {count} entries, one per pose", f"{meta_path}: perFrameIntrinsicCoeffs")
    global_k = None
    if not per_frame_k:
        global_k = _check_intrinsics(intrinsics_from_k(_numbers(meta.get("K"), 9, f"{meta_path}: K")),
                                     f"{meta_path}: K")
    stamps = meta.get("frameTimestamps")
    fps = meta.get("fps")
    colour_dir, depth_dir = next(((c, d) for c, d in FRAME_FOLDERS if (root / c).is_dir()), FRAME_FOLDERS[0])
    frames: list[Frame] = []
    chosen = even_subsample(count, ctx.target_frames)
    for n, i in enumerate(chosen):
        where = f"{meta_path}: poses[{i}]"
        q_t = _numbers(poses_raw[i], 7, where)
        pose = opengl_to_opencv(pose_from_quaternion(tuple(q_t[:4]), tuple(q_t[4:]), where))
        if per_frame_k:
            k_where = f"{meta_path}: perFrameIntrinsicCoeffs[{i}]"
            fx, fy, cx, cy = _check_intrinsics(tuple(_numbers(per_frame_k[i], 4, k_where)), k_where)
        else:
            fx, fy, cx, cy = global_k  # type: ignore[misc]
        camera = Camera(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
        colour = _frame_file(root, colour_dir, i, COLOUR_SUFFIXES)
        depth_src = _frame_file(root, depth_dir, i, (".exr",))
        if colour is None and depth_src is None:
            ctx.progress.warning(
                f"skipping frame {i}: neither {colour_dir}/{i}.jpg nor {depth_dir}/{i}.exr exists"
            )
            continue
        image_rel = None
        if colour is not None:
            with open_image(colour) as img:
                size, image_format = img.size, img.format
            if image_format not in ("JPEG", "MPO", "PNG"):
                raise IngestError(f"expected a JPEG or PNG colour frame, got {image_format}", colour)
            if size != (width, height):
                camera = camera.scaled(*size)
            name = colour.stem + suffix_for(image_format, colour.suffix)
            copy_file(colour, ctx.capture.images_dir / name)
            image_rel = f"images/{name}"
        depth_rel = None
        if depth_src is not None:
            depth = read_raw_map(depth_src)
            if not np.issubdtype(depth.dtype, np.floating):
                raise IngestError(f"expected float depth in metres, got {depth.dtype}", depth_src)
            metres_to_mm_png(depth, ctx.capture.depth_dir / f"{i}.png")
            depth_rel = f"depth/{i}.png"
        ts = None
        if isinstance(stamps, list) and i < len(stamps) and _is_number(stamps[i]):
            ts = float(stamps[i])
        elif _is_number(fps) and 0 < fps <= MAX_FPS:
            ts = i / float(fps)
        frames.append(
            Frame(
                id=frame_id(i),
                camera=camera,
                image=image_rel,
                source_name=colour.name if colour is not None else f"{i}.exr",
                pose=as_pose_tuple(pose),
                depth=depth_rel,
                depth_scale=0.001,
                timestamp=ts,
            )
        )
        ctx.progress.update((n + 1) / len(chosen), f"frame {n + 1}/{len(chosen)}")
    if not frames:
        raise IngestError(f"none of the {count} frames in the metadata has a colour or depth file", root)
    if ctx.originals_to_raw:
        copy_tree(root, ctx.capture.raw_dir)
    return SourceResult(
        kind="record3d",
        frames=tuple(frames),
        default_mode="rgbd",
        scale="metric",
        info={"app": "Record3D", "device_frames": count},
    )
